"""A YAML loader that refuses hostile documents instead of exhausting memory, time or the stack.

PyYAML's safe loader builds only plain data, but it still lets a file of a few
hundred bytes describe a billion nodes through anchors and aliases, recurses
once per nesting level, hands integers of any length to `int()` and lets
`ValueError`s from impossible dates escape.  Every gpucost file goes through
`parse_yaml_text` here, which turns all of that into one `ConfigError` naming
the file and the line.
"""

from __future__ import annotations

from typing import Any, cast

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError, SafeConstructor

from gpucost.errors import ConfigError

__all__ = ["MAX_ALIAS_EXPANSION", "MAX_INTEGER_BITS", "MAX_NESTING_DEPTH", "parse_yaml_text"]

# No gpucost file nests more than a handful of levels; 100 leaves room while
# staying far below the interpreter's recursion limit.
MAX_NESTING_DEPTH = 100
# Aliases may add this many nodes in all: plenty for `<<: *defaults` reuse,
# nowhere near a "billion laughs" document.
MAX_ALIAS_EXPANSION = 10_000
# 10**400 still loads so the parser can name its key; integers far beyond any
# price or count (and beyond what Python will print) stop here.
MAX_INTEGER_BITS = 4_000
_MAX_INTEGER_TEXT = 1_300


class _HostileDocument(ComposerError):
    """Raised while composing; carries the mark of the node that crossed a limit."""


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader that counts nesting depth and alias expansion while composing the node graph."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0
        self._alias_expansion = 0
        # Expanded node count of every composed node, by identity: an alias costs its target's size.
        self._sizes: dict[int, int] = {}

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # `[[[[...` is counted here, at the scanner, which otherwise looks far ahead for keys.
        if self.flow_level >= MAX_NESTING_DEPTH:
            raise _HostileDocument(None, None, f"nested too deeply (more than {MAX_NESTING_DEPTH} levels)",
                                   self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            return self._compose_alias(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_NESTING_DEPTH:
                mark = cast(Any, self).peek_event().start_mark  # PyYAML's stubs leave it untyped
                raise _HostileDocument(None, None, f"nested too deeply (more than {MAX_NESTING_DEPTH} levels)", mark)
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = 1 + sum(self._sizes.get(id(child), 1) for child in _children(node))
        return node

    def _compose_alias(self, parent: Any, index: Any) -> Any:
        event = cast(Any, self).peek_event()
        target = self.anchors.get(event.anchor)
        if target is not None:
            size = self._sizes.get(id(target))
            if size is None:
                # The anchor's node is still being composed: the alias is inside what it names.
                raise _HostileDocument(None, None, f"alias *{event.anchor} refers to a node containing it",
                                       event.start_mark)
            self._alias_expansion += size
            if self._alias_expansion > MAX_ALIAS_EXPANSION:
                raise _HostileDocument(
                    None, None, f"aliases expand to more than {MAX_ALIAS_EXPANSION} nodes", event.start_mark
                )
        return super().compose_node(parent, index)

    def construct_object(self, node: Any, deep: bool = False) -> Any:
        # PyYAML's constructors let ValueError & co. escape for values such as
        # 2025-13-45 or `!!float abc`; give them the node's line like any YAML error.
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError, AttributeError, KeyError) as err:
            raise ConstructorError(None, None, f"cannot read this value: {err}", node.start_mark) from err


def _children(node: Any) -> list[Any]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _construct_bounded_int(loader: _GuardedLoader, node: Any) -> int:
    """An integer, refused before conversion when its text is long enough to be slow or unprintable."""
    if len(str(node.value)) > _MAX_INTEGER_TEXT:
        raise ConstructorError(None, None, f"integer longer than {_MAX_INTEGER_TEXT} characters", node.start_mark)
    value = SafeConstructor.construct_yaml_int(loader, node)
    if value.bit_length() > MAX_INTEGER_BITS:
        raise ConstructorError(None, None, "integer too large", node.start_mark)
    return value


_GuardedLoader.add_constructor("tag:yaml.org,2002:int", _construct_bounded_int)


def parse_yaml_text(text: str, file: str) -> object:
    """Parse one YAML document; anything malformed or hostile is a ConfigError naming `file`."""
    try:
        loader = _GuardedLoader(text)
    except yaml.reader.ReaderError as err:
        raise _reader_error(text, err, file) from None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        raise ConfigError(file, "", _line_text(text, err.problem_mark), _describe(err)) from None
    except yaml.reader.ReaderError as err:
        raise _reader_error(text, err, file) from None
    except yaml.YAMLError as err:
        raise ConfigError(file, "", text[:60], f"not valid YAML: {_first_line(str(err))}") from None
    except RecursionError:
        raise ConfigError(file, "", text[:60], "not valid YAML: nested too deeply") from None
    except (ValueError, TypeError, OverflowError, AttributeError, KeyError) as err:
        # Raised by PyYAML outside construct_object (e.g. merging keys); no line is known.
        raise ConfigError(file, "", text[:60], f"not valid YAML: {_first_line(str(err))}") from None
    finally:
        loader.dispose()


def _reader_error(text: str, err: yaml.reader.ReaderError, file: str) -> ConfigError:
    """A control character YAML does not allow; the reader reports no line, only the position."""
    line = text.count("\n", 0, err.position) + 1
    code = err.character if isinstance(err.character, int) else ord(err.character)
    return ConfigError(file, "", text[max(err.position - 20, 0) : err.position + 20],
                       f"not valid YAML at line {line}: character {code:#04x} is not allowed in YAML")


def _describe(err: yaml.MarkedYAMLError) -> str:
    mark = err.problem_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    problem = "; ".join(part for part in (err.context, err.problem) if part) or "parse error"
    return f"not valid YAML{where}: {_first_line(problem)}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "parse error"


def _line_text(text: str, mark: Any) -> str:
    if mark is None:
        return text[:60]
    lines = text.splitlines()
    return lines[mark.line][:60] if mark.line < len(lines) else ""
