"""The spill: what pass 1 keeps of each image for pass 2, one length-prefixed record per image in a
file of the output folder (no JSON encode/decode round trip between the passes)."""

from __future__ import annotations

import marshal
import pickle
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

_LEN = struct.Struct("<I")
_PICKLE_PROTO = pickle.PROTO[0]


class SpillRecord(NamedTuple):
    """What pass 1 keeps of an image for pass 2 (the graph as `SceneGraph.to_tuples`: its JSON for the
    table is written in pass 2, which runs on every core)."""

    key: str
    source: str
    image: str | None
    captions: list[str]
    graph: tuple
    parsed: list[dict]
    words: list[str]
    sensitive: dict[str, str]
    license: str | None


def write_spill(f, rec: SpillRecord) -> None:
    try:
        # marshal writes and reads these plain values (str, int, bool, None, list, tuple, dict) for about
        # 3/4 of pickle's cost (its format is Python's own, fine for a spill this build reads back);
        # anything else it refuses is pickled (`read_spill` tells them apart).
        blob = marshal.dumps(tuple(rec))
    except ValueError:
        blob = pickle.dumps(tuple(rec), protocol=pickle.HIGHEST_PROTOCOL)
    f.write(_LEN.pack(len(blob)))
    f.write(blob)


def read_spill(blob: bytes) -> SpillRecord:
    # A pickle starts with its PROTO opcode, 0x80; a marshal never does (no marshal type code is 0).
    return SpillRecord(*(pickle.loads(blob) if blob[0] == _PICKLE_PROTO else marshal.loads(blob)))


def spill_blobs(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while True:
            head = f.read(_LEN.size)
            if len(head) < _LEN.size:
                return
            yield f.read(_LEN.unpack(head)[0])


def spill_records(path: Path) -> Iterator[SpillRecord]:
    for blob in spill_blobs(path):
        yield read_spill(blob)


def chunks(path: Path, size: int) -> Iterator[list[bytes]]:
    """The spill's records, undecoded, in lists of `size` (the last may be shorter)."""
    chunk: list[bytes] = []
    for b in spill_blobs(path):
        chunk.append(b)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
