"""Stream the items of a top-level JSON array from a file of any size, in bounded memory.

Visual Genome ships multi-GB single-array files; `json.load` would hold all of them. This reads
buffered chunks and decodes one item at a time with `json.JSONDecoder.raw_decode`. A malformed item
does not stop the stream: it is reported (a `Malformed` marker with its character offset) and decoding
resumes at the next `{` from which a whole item decodes that `accept` recognises (so a fragment of
the bad item, e.g. one of its nested objects, is not taken for a record).

A file can also be read in byte ranges by several processes (`split_points`, `Part`): each range
starts at an item found by scanning for a `{` that decodes to an accepted item, reads exactly as the
whole-file reader would from there, and ends before the first item at or past the next range's start.
Whether it ended exactly there (`Part.end_range`) is checked by the caller, so a range start that was
not a real item boundary is detected (the range before it then simply reads on).
"""

from __future__ import annotations

import codecs
import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

CHUNK: Final = 1 << 20
MAX_ITEM: Final = 256 << 20  # an item longer than this is declared malformed rather than buffered further
_WS: Final = " \t\r\n"
_TOKEN: Final = 16  # longer than any JSON token that cannot be decoded in part (literal, \\uXXXX\\uXXXX pair)


class NotAnArray(ValueError):
    pass


@dataclass
class Malformed:
    offset: int  # character offset of the bad item in the file
    reason: str


@dataclass
class Part:
    """One byte range of an array file, for one reader. `starts` are the byte offsets where the ranges
    of the whole plan start (`split_points`); this part reads from `starts[index]` and stops before the
    first item at or past a later start. Offsets of its `Malformed` markers are characters from its start."""

    starts: list[int]
    index: int
    end_range: int | None = None  # the range whose start this part stopped at (None: the end of the array)
    end_char: int = 0  # characters read from this part's start up to there
    items: int = 0  # items (and Malformed markers) yielded

    @property
    def start(self) -> int:
        return self.starts[self.index]


class _Buffer:
    def __init__(self, f, chunk: int) -> None:
        self.f, self.chunk = f, chunk
        self.buf, self.base, self.pos, self.eof = "", 0, 0, False
        self.item_start = 0  # offset where the last `_decode` began

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


def _open_text(path: Path, start: int):
    """The file as text from byte `start` (decoded exactly as a whole-file read decodes it there)."""
    if not start:
        return open(path, encoding="utf-8", errors="replace")
    raw = open(path, "rb")
    raw.seek(start)
    return io.TextIOWrapper(raw, encoding="utf-8", errors="replace")


def char_count(path: Path, start: int, stop: int, chunk: int = CHUNK) -> int:
    """Characters that bytes [start, stop) of `path` decode to (UTF-8, errors replaced, universal
    newlines: what `open(path, encoding="utf-8", errors="replace")` reads), for ASCII-byte boundaries."""
    dec = io.IncrementalNewlineDecoder(codecs.getincrementaldecoder("utf-8")("replace"), translate=True)
    n = 0
    with open(path, "rb") as f:
        f.seek(start)
        left = stop - start
        while left > 0:
            data = f.read(min(chunk, left))
            if not data:
                break
            left -= len(data)
            n += len(dec.decode(data))
    return n + len(dec.decode(b"", final=True))


class _Stops:
    """Where a `Part` may stop: the later ranges' starts, as character offsets from the part's start.
    `next` (the range whose start `char` is) and `char` are both set or both None."""

    def __init__(self, path: Path, part: Part | None) -> None:
        self.path, self.part = path, part
        self.next: int | None = None if part is None else part.index + 1
        self.char: int | None = None
        self._advance(0)

    def _advance(self, base: int) -> None:
        part = self.part
        if part is None or self.next is None or self.next >= len(part.starts):
            self.next = self.char = None
            return
        prev = part.start if self.char is None else part.starts[self.next - 1]
        self.char = base + char_count(self.path, prev, part.starts[self.next])

    def reached(self, offset: int) -> bool:
        """True (and the part ends) when an item starting at `offset` belongs to a later range: exactly at
        a range start, or past one (then the next start that an item lands on is looked for)."""
        while self.char is not None and self.next is not None and offset > self.char:
            self.next += 1
            self._advance(self.char)
        part = self.part
        if part is not None and self.char is not None and offset == self.char:
            part.end_range, part.end_char = self.next, offset
            return True
        return False

    def end(self, offset: int) -> None:
        if self.part is not None:
            self.part.end_range, self.part.end_char = None, offset


def iter_array(path: Path, accept: Callable[[object], bool] | None = None,
               chunk: int = CHUNK, part: Part | None = None) -> Iterator[object | Malformed]:
    """Yield each item of the JSON array in `path`, or a `Malformed` marker where one is broken.
    With `part`, only the items of that byte range (see `Part`).

    Raises NotAnArray when the file does not start with `[` (a whole unusable input).
    """
    items = _items(path, accept, chunk, part)
    return items if part is None else _counted(items, part)


def _counted(items: Iterator, part: Part) -> Iterator:
    for x in items:
        part.items += 1
        yield x


def _items(path: Path, accept, chunk: int, part: Part | None) -> Iterator[object | Malformed]:
    dec = json.JSONDecoder()
    start = part.start if part is not None else 0
    with _open_text(path, start) as f:
        r = _Buffer(f, chunk)
        stops = _Stops(path, part)
        if not start:
            if r.peek() != "[":
                raise NotAnArray(f"{path}: not a JSON array (expected '[' at the start)")
            r.pos += 1
        expect_item = True
        while True:
            c = r.peek()
            if expect_item and stops.reached(r.offset):
                return
            if c == "":
                stops.end(r.offset)
                yield Malformed(r.offset, "file ends before the closing ']' (truncated)")
                return
            if c == "]" and (not expect_item or r.buf[r.pos - 1] != ","):
                stops.end(r.offset)
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
                else:
                    yield item
                    expect_item = False
                    continue
            if item is None:
                stops.end(r.offset)
                return
            if stops.reached(r.item_start):  # resynchronised onto an item of a later range
                return
            yield item
            expect_item = False


def _needs_more(r: _Buffer, e: json.JSONDecodeError) -> bool:
    """True when decoding may have failed only because the item runs past the buffer end (an error
    within a token's length of the end, e.g. `fal|se` or a cut `\\u00e9` escape, may be the cut: the
    retry with more text gives the real error, if any, at the same place)."""
    cut = e.pos >= len(r.buf) - _TOKEN or e.msg.startswith("Unterminated string")
    return cut and len(r.buf) - r.pos < MAX_ITEM and r.more()


def _decode(dec: json.JSONDecoder, r: _Buffer):
    r.item_start = r.offset
    if len(r.buf) - r.pos < r.chunk >> 2:
        # Less than a quarter chunk left: read on before decoding, as an item likely runs past the buffer
        # and decoding one that does fails, a failure that costs more than the read (JSONDecodeError
        # counts the lines of the whole buffer before it).
        r.more()
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


def split_points(path: Path, n: int, accept: Callable[[object], bool], window: int = CHUNK) -> list[int]:
    """Byte offsets where `n` ranges of about equal size start: 0, then for each later range the first
    `{` at or after its share of the file from which a whole item decodes that `accept` recognises
    (an item of the array, unless a nested object is accepted too: readers check, see `Part`).
    Fewer ranges where none is found."""
    size = Path(path).stat().st_size
    starts = [0]
    dec = json.JSONDecoder()
    with open(path, "rb") as f:
        for k in range(1, n):
            at = max(size * k // n, starts[-1] + 1)
            found = _item_at_or_after(f, at, size, dec, accept, window)
            if found is None:
                break
            if found > starts[-1]:
                starts.append(found)
    return starts


def _item_at_or_after(f, at: int, size: int, dec: json.JSONDecoder, accept, window: int) -> int | None:
    """Byte offset of the first `{` at or after `at` from which an accepted item decodes (None: none)."""
    while at < size:
        f.seek(at)
        data = f.read(window)
        first = data.find(b"{")
        if first == -1:
            at += len(data)
            continue
        whole = len(data) < window  # the file ends inside this window
        text = data[first:].decode("utf-8", errors="replace")  # `{` is ASCII: a character boundary
        i, cut = 0, None
        while (i := text.find("{", i)) != -1:
            try:
                item, _ = dec.raw_decode(text, i)
            except json.JSONDecodeError as e:
                if not whole and (e.pos >= len(text) - _TOKEN or e.msg.startswith("Unterminated string")):
                    cut = i  # runs past the window: look again from this `{`
                    break
                i += 1
                continue
            if accept(item):
                prefix = text[:i].encode("utf-8")
                if data[first:first + len(prefix)] != prefix:
                    return None  # undecodable bytes before it: its byte offset is not known exactly
                return at + first + len(prefix)
            i += 1
        if cut is None:
            if whole:
                return None
            at += len(data)
        elif cut == 0:  # one item longer than the window
            window *= 2
            if window > MAX_ITEM:
                return None
            at += first
        else:
            at += first + len(text[:cut].encode("utf-8"))
    return None
