"""The output the docs show is the output the programs print.

Convention in the markdown (readable as it stands):

* a fenced ```yaml block whose first line is `# file: NAME` is a file the
  examples after it in the same document may use;
* a fenced ```console block is a transcript: each `$ COMMAND` line is run in a
  fresh directory holding those files, and the lines up to the next `$` are
  its output (stdout and stderr, in order), compared exactly.

Error messages written elsewhere in the docs (`... (got 0)`) drift unseen, so
they must be in a checked transcript.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gpucost_testing.servers import REPO_ROOT

DOCS = [*sorted((REPO_ROOT / "docs").glob("*.md")), REPO_ROOT / "README.md"]
FILE_MARK = "# file: "
# The budgets doc describes the shape of the line, not one instance of it.
GENERIC_ERROR_SHAPE = "(got value)"


@dataclass(frozen=True)
class Block:
    line: int  # of the opening fence, 1-based
    info: str
    body: list[str]


@dataclass(frozen=True)
class Example:
    doc: Path
    line: int
    command: str
    expected: list[str]
    files: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.doc.relative_to(REPO_ROOT)}:{self.line}"


def _blocks(text: str) -> Iterator[Block]:
    lines = text.split("\n")
    index = 0
    while index < len(lines):
        opening = lines[index]
        if opening.startswith("```"):
            end = index + 1
            while end < len(lines) and not lines[end].startswith("```"):
                end += 1
            yield Block(index + 1, opening[3:].strip(), lines[index + 1:end])
            index = end
        index += 1


def _examples(doc: Path) -> Iterator[Example]:
    files: dict[str, str] = {}
    for block in _blocks(doc.read_text(encoding="utf-8")):
        if block.info == "yaml" and block.body and block.body[0].startswith(FILE_MARK):
            files[block.body[0].removeprefix(FILE_MARK).strip()] = "\n".join(block.body[1:]) + "\n"
        elif block.info == "console":
            command: tuple[int, str] | None = None
            output: list[str] = []
            for offset, text in enumerate(block.body, start=1):
                if text.startswith("$ "):
                    if command is not None:
                        yield Example(doc, command[0], command[1], output, dict(files))
                    command, output = (block.line + offset, text[2:]), []
                else:
                    output.append(text)
            assert command is not None, f"{doc}:{block.line}: a console block without a $ command"
            yield Example(doc, command[0], command[1], output, dict(files))


EXAMPLES = [example for doc in DOCS for example in _examples(doc)]


def _argv(command: str) -> list[str]:
    argv = shlex.split(command)
    # The commands as a user types them, resolved to this environment's scripts.
    installed = Path(sys.executable).parent / argv[0]
    if argv[0] == "python":
        return [sys.executable, *argv[1:]]
    return [str(installed), *argv[1:]] if installed.exists() else argv


def test_the_docs_have_checked_examples() -> None:
    documents = {example.doc.name for example in EXAMPLES}
    assert {"configuration.md", "pricing.md", "scenarios.md", "kubernetes.md"} <= documents


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_a_documented_command_prints_what_the_docs_show(example: Example, tmp_path: Path) -> None:
    for name, content in example.files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if key != "NODE_NAME"}
    result = subprocess.run(_argv(example.command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            check=False, timeout=30, cwd=tmp_path, env=env)
    printed = [line.rstrip() for line in result.stdout.rstrip("\n").split("\n")]
    assert printed == [line.rstrip() for line in example.expected], f"{example.id}: $ {example.command}"


def _outside_transcripts(text: str) -> Iterator[tuple[int, str]]:
    transcript_lines: set[int] = set()
    for block in _blocks(text):
        if block.info == "console":
            transcript_lines.update(range(block.line, block.line + len(block.body) + 2))
    for number, line in enumerate(text.split("\n"), start=1):
        if number not in transcript_lines:
            yield number, line


@pytest.mark.parametrize("doc", DOCS, ids=[doc.name for doc in DOCS])
def test_error_messages_in_the_docs_are_checked_transcripts(doc: Path) -> None:
    unchecked = [f"{doc.name}:{number}: {line.strip()}"
                 for number, line in _outside_transcripts(doc.read_text(encoding="utf-8"))
                 if re.search(r"\(got [^)]*\)", line.replace(GENERIC_ERROR_SHAPE, ""))]
    assert not unchecked, "put these in a ```console block (see tests/unit/test_docs_examples.py):\n" + "\n".join(
        unchecked)
