"""Cut overlong strings out of a JSON byte stream before it is decoded.

`json.loads` needs the whole document, and a document holding one 64 MB
annotation costs that 64 MB three times over (the bytes, the decoded text,
the string value) before anything can drop it.  `LongStringCutter` sits
between the socket and the decoder: it passes JSON through chunk by chunk and
keeps only the first `limit` bytes of every string (keys included), so neither
the buffered response nor the decoded objects ever hold a long string.

The output stays valid JSON: a cut never falls inside an escape sequence
(`\\n`, `\\u00e9`), between the two halves of an escaped surrogate pair, or
inside a multi-byte UTF-8 character; it lands at the first such boundary at or
after `limit` bytes.  Strings up to `limit` bytes pass through byte for byte.
The scan is a state machine over chunks, so a string may span any number of
chunks; long runs of plain bytes are skipped with `re`/`bytes.find`, never
byte by byte, so a 64 MB value costs milliseconds.
"""

from __future__ import annotations

import re
from enum import Enum

__all__ = ["LongStringCutter"]

_QUOTE_OR_BACKSLASH = re.compile(rb'["\\]')
_QUOTE = 0x22
_BACKSLASH = 0x5C
_LOWER_U = 0x75
_UNICODE_ESCAPE_BYTES = 6  # \uXXXX
_SHORT_ESCAPE_BYTES = 2  # \n, \", ...


class _State(Enum):
    OUTSIDE = "outside"  # between strings: copy up to the next quote
    COPYING = "copying"  # inside a string, under the limit: copy
    SEEKING = "seeking"  # at the limit: copy up to the next safe place to cut
    SKIPPING = "skipping"  # cut: drop everything up to the closing quote


def _is_utf8_continuation(byte: int) -> bool:
    return 0x80 <= byte <= 0xBF


def _is_high_surrogate_escape(escape: bytes) -> bool:
    if len(escape) != _UNICODE_ESCAPE_BYTES:
        return False
    try:
        return 0xD800 <= int(escape[2:], 16) <= 0xDBFF
    except ValueError:
        return False


class LongStringCutter:
    """Feed raw JSON chunks, get back the same JSON with every string cut to about `limit` bytes."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        self.limit = limit
        self.cut_count = 0
        self._state = _State.OUTSIDE
        self._kept = 0  # bytes of the current string passed through so far
        self._escape = bytearray()  # an escape sequence being copied, possibly across chunks
        self._skip_escaped = False  # SKIPPING: the previous chunk ended on a backslash
        self._after_high_surrogate = False

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        position = 0
        while position < len(chunk):
            if self._escape:
                position = self._continue_escape(chunk, position, out)
            elif self._state is _State.OUTSIDE:
                position = self._outside(chunk, position, out)
            elif self._state is _State.COPYING:
                position = self._copying(chunk, position, out)
            elif self._state is _State.SEEKING:
                position = self._seeking(chunk, position, out)
            else:
                position = self._skipping(chunk, position, out)
        return bytes(out)

    def finish(self) -> bytes:
        """What is still held at the end of the stream (a truncated escape: the decoder will reject it)."""
        rest, self._escape = bytes(self._escape), bytearray()
        return rest

    # --- states -------------------------------------------------------------------

    def _outside(self, chunk: bytes, position: int, out: bytearray) -> int:
        quote = chunk.find(b'"', position)
        if quote < 0:
            out += chunk[position:]
            return len(chunk)
        out += chunk[position : quote + 1]
        self._state = _State.COPYING
        self._kept = 0
        self._after_high_surrogate = False
        return quote + 1

    def _copying(self, chunk: bytes, position: int, out: bytearray) -> int:
        room = self.limit - self._kept
        end = min(len(chunk), position + room)
        special = _QUOTE_OR_BACKSLASH.search(chunk, position, end)
        stop = special.start() if special else end
        if stop > position:
            out += chunk[position:stop]
            self._kept += stop - position
            self._after_high_surrogate = False
        if special is not None:
            return self._special(chunk, stop, out)
        if self._kept >= self.limit:
            self._state = _State.SEEKING
        return stop

    def _seeking(self, chunk: bytes, position: int, out: bytearray) -> int:
        # At most a few bytes pass here: the rest of a UTF-8 character or a surrogate pair's second half.
        byte = chunk[position]
        if byte == _QUOTE or (byte == _BACKSLASH and self._after_high_surrogate):
            return self._special(chunk, position, out)
        if _is_utf8_continuation(byte):
            out.append(byte)
            self._kept += 1
            return position + 1
        self.cut_count += 1
        self._state = _State.SKIPPING
        return position

    def _skipping(self, chunk: bytes, position: int, out: bytearray) -> int:
        if self._skip_escaped:
            self._skip_escaped = False
            return position + 1
        special = _QUOTE_OR_BACKSLASH.search(chunk, position)
        if special is None:
            return len(chunk)
        if chunk[special.start()] == _BACKSLASH:
            # The escaped byte may be a quote that does not end the string; \uXXXX digits are plain.
            if special.start() + 1 < len(chunk):
                return special.start() + 2
            self._skip_escaped = True
            return len(chunk)
        out.append(_QUOTE)
        self._state = _State.OUTSIDE
        return special.start() + 1

    # --- quotes and escapes inside a string ---------------------------------------------

    def _special(self, chunk: bytes, position: int, out: bytearray) -> int:
        if chunk[position] == _QUOTE:
            out.append(_QUOTE)
            self._state = _State.OUTSIDE
            return position + 1
        self._escape.append(_BACKSLASH)
        return position + 1

    def _continue_escape(self, chunk: bytes, position: int, out: bytearray) -> int:
        wanted = _UNICODE_ESCAPE_BYTES if len(self._escape) > 1 and self._escape[1] == _LOWER_U else None
        if wanted is None:
            self._escape.append(chunk[position])
            position += 1
            if self._escape[1] != _LOWER_U:
                wanted = _SHORT_ESCAPE_BYTES
            else:
                return position
        take = min(wanted - len(self._escape), len(chunk) - position)
        self._escape += chunk[position : position + take]
        position += take
        if len(self._escape) == wanted:
            escape = bytes(self._escape)
            self._escape.clear()
            out += escape
            self._kept += len(escape)
            self._after_high_surrogate = _is_high_surrogate_escape(escape)
            self._state = _State.COPYING if self._kept < self.limit else _State.SEEKING
        return position
