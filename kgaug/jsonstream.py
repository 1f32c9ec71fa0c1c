"""Stream the items of a top-level JSON array from a file of any size, in bounded memory.

Visual Genome ships multi-GB single-array files; `json.load` would hold all of them. This reads
buffered chunks and decodes one item at a time with `json.JSONDecoder.raw_decode`. A malformed item
does not stop the stream: it is reported (a `Malformed` marker with its character offset) and decoding
resumes at the next `{` from which a whole item decodes that `accept` recognises (so a fragment of
the bad item, e.g. one of its nested objects, is not taken for a record).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20
MAX_ITEM = 256 << 20  # an item longer than this is declared malformed rather than buffered further
_WS = " \t\r\n"


class NotAnArray(ValueError):
    pass


@dataclass
class Malformed:
    offset: int  # character offset of the bad item in the file
    reason: str


class _Buffer:
    def __init__(self, f, chunk: int) -> None:
        self.f, self.chunk = f, chunk
        self.buf, self.base, self.pos, self.eof = "", 0, 0, False

    def more(self) -> bool:
        if self.eof:
            return False
        data = self.f.read(self.chunk)
        if len(data) < self.chunk:
            self.eof = True
        if not data:
            return False
        if self.pos:
            self.buf, self.base, self.pos = self.buf[self.pos:], self.base + self.pos, 0
        self.buf += data
        return True

    def peek(self) -> str:
        """Next non-blank character ('' at the end of the file)."""
        while True:
            b, p = self.buf, self.pos
            while p < len(b) and b[p] in _WS:
                p += 1
            self.pos = p
            if p < len(b):
                return b[p]
            if not self.more():
                return ""

    @property
    def offset(self) -> int:
        return self.base + self.pos


def iter_array(path: Path, accept: Callable[[object], bool] | None = None,
               chunk: int = CHUNK) -> Iterator[object | Malformed]:
    """Yield each item of the JSON array in `path`, or a `Malformed` marker where one is broken.

    Raises NotAnArray when the file does not start with `[` (a whole unusable input).
    """
    dec = json.JSONDecoder()
    with open(path, encoding="utf-8", errors="replace") as f:
        r = _Buffer(f, chunk)
        if r.peek() != "[":
            raise NotAnArray(f"{path}: not a JSON array (expected '[' at the start)")
        r.pos += 1
        expect_item = True
        while True:
            c = r.peek()
            if c == "":
                yield Malformed(r.offset, "file ends before the closing ']' (truncated)")
                return
            if c == "]" and (not expect_item or r.buf[r.pos - 1] != ","):
                return
            if not expect_item:
                if c == ",":
                    r.pos += 1
                    expect_item = True
                    continue
                yield Malformed(r.offset, f"expected ',' or ']' between items, found {c!r}")
                item = _resync(dec, r, accept, start=r.pos)
            else:
                item = _decode(dec, r)
                if isinstance(item, Malformed):
                    yield item
                    item = _resync(dec, r, accept, start=r.pos + 1)
            if item is None:
                return
            yield item
            expect_item = False


def _needs_more(r: _Buffer, e: json.JSONDecodeError) -> bool:
    """True when decoding may have failed only because the item runs past the buffer end."""
    cut = e.pos >= len(r.buf) - 1 or e.msg.startswith("Unterminated string")
    return cut and len(r.buf) - r.pos < MAX_ITEM and r.more()


def _decode(dec: json.JSONDecoder, r: _Buffer):
    while True:
        try:
            item, end = dec.raw_decode(r.buf, r.pos)
        except json.JSONDecodeError as e:
            if _needs_more(r, e):
                continue
            return Malformed(r.offset, f"malformed JSON item: {e.msg}")
        if end >= len(r.buf) and r.more():  # a number cut at the chunk end decodes short
            continue
        r.pos = end
        return item


def _resync(dec: json.JSONDecoder, r: _Buffer, accept, start: int):
    """The next item, decoded from a `{` at or after `start`, that `accept` recognises; None at EOF."""
    r.pos = start
    while True:
        i = r.buf.find("{", r.pos)
        if i == -1:
            r.pos = len(r.buf)
            if not r.more():
                return None
            continue
        r.pos = i
        item = _decode(dec, r)
        if isinstance(item, Malformed):
            r.pos += 1
        elif accept is None or accept(item):
            return item
