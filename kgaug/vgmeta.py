"""Visual Genome's synonym resources: the `*_synsets.json` maps and the alias lists.

Two names are the same concept when VG maps them to one synset (objects, attributes) or lists them
on one alias line. These maps are vocabulary-sized (not image-sized), so they are loaded whole.
"""

from __future__ import annotations

import json
from pathlib import Path

from kgaug import lexicon

# Synsets VG assigns to almost every predicate: sharing one of them says nothing about meaning.
_GENERIC = {"be.v.01", "have.v.01", "along.r.01", "in.r.01", "on.r.01", "of.r.01", "with.r.01"}


class VGMeta:
    def __init__(self) -> None:
        self.object_synset: dict[str, str] = {}
        self.attribute_synset: dict[str, str] = {}
        self.predicate_synset: dict[str, str] = {}
        self.object_alias: dict[str, int] = {}
        self.predicate_alias: dict[str, int] = {}
        self.problems: list[str] = []

    @classmethod
    def from_dir(cls, folder: Path | None) -> VGMeta:
        m = cls()
        if folder is None:
            return m
        folder = Path(folder)
        for fname, target, norm in (
            ("object_synsets.json", m.object_synset, lambda s: lexicon.singular(lexicon.clean(s))[0]),
            ("attribute_synsets.json", m.attribute_synset, lexicon.clean),
            ("relationship_synsets.json", m.predicate_synset, lexicon.predicate),
        ):
            path = folder / fname
            if not path.exists():
                continue
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                m.problems.append(f"{path}: unreadable synset map ({e}); ignored")
                continue
            if not isinstance(data, dict):
                m.problems.append(f"{path}: not a JSON object; ignored")
                continue
            for k, v in data.items():
                if isinstance(k, str) and isinstance(v, str):
                    key = norm(k)
                    if key:
                        target.setdefault(key, v)
        for fname, alias_map, norm in (
            ("object_alias.txt", m.object_alias, lambda s: lexicon.singular(lexicon.clean(s))[0]),
            ("relationship_alias.txt", m.predicate_alias, lexicon.predicate),
        ):
            path = folder / fname
            if not path.exists():
                continue
            for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines()):
                for w in line.split(","):
                    w = norm(w)
                    if w:
                        alias_map.setdefault(w, i)
        return m

    def same_object(self, a: str, b: str) -> bool:
        sa, sb = self.object_synset.get(a), self.object_synset.get(b)
        if sa is not None and sa == sb:
            return True
        ia = self.object_alias.get(a)
        return ia is not None and ia == self.object_alias.get(b)

    def same_attribute(self, a: str, b: str) -> bool:
        sa = self.attribute_synset.get(a)
        return sa is not None and sa == self.attribute_synset.get(b)

    def same_predicate(self, a: str, b: str) -> bool:
        ia = self.predicate_alias.get(a)
        if ia is not None and ia == self.predicate_alias.get(b):
            return True
        sa = self.predicate_synset.get(a)
        return sa is not None and sa not in _GENERIC and sa == self.predicate_synset.get(b)
