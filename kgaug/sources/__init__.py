"""Input readers. Each yields, in a deterministic order, `Record`s (one per image) or `Skip`s (one per
unusable record, with its reason). A whole unusable input raises `InputError` naming the file."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

from kgaug.scene_graph import SceneGraph

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp")


class InputError(ValueError):
    """The input as a whole cannot be used (missing file, wrong format): one clear message."""


@dataclass
class Record:
    key: str
    source: str
    image: str | None
    captions: list[str] = field(default_factory=list)
    graph: SceneGraph | None = None  # None: build it by parsing the captions
    sensitive: dict[str, str] = field(default_factory=dict)
    license: str | None = None
    problems: list[str] = field(default_factory=list)  # per-record items dropped while reading


@dataclass(frozen=True)
class RelativeWhere:
    """A position in a file read in ranges by several processes, counted from its range's start
    (`<prefix><n>`); `absolute` adds the items or characters of the ranges before it."""

    prefix: str
    kind: str  # "item" or "character"
    n: int

    def absolute(self, items_before: int, chars_before: int) -> str:
        return f"{self.prefix}{self.n + (items_before if self.kind == 'item' else chars_before)}"


@dataclass
class Skip:
    where: str | RelativeWhere
    reason: str


_UNSAFE = re.compile(r"[^A-Za-z0-9_\-]+")


def make_key(source: str, source_id: object) -> str:
    """`<source>_<id>` with anything but letters, digits, - and _ folded to '_' (no dots)."""
    s = _UNSAFE.sub("_", str(source_id)).strip("_")
    if not s:
        s = hashlib.sha1(str(source_id).encode()).hexdigest()[:16]
    return f"{source}_{s}"


def hashed_key(source: str, text: str) -> str:
    return f"{source}_{hashlib.sha1(text.encode()).hexdigest()[:16]}"
