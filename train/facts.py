"""What the trainer can know about texts and images without a model (pure, no I/O but the word list).

The false-negative guard (train/ahnm.py) must never merge two texts that state different facts:
captions that differ by one attribute or relation word, or by word order, are exactly the
compositional negatives the method teaches, and an embedding of a model that is still word-order
blind puts them at cosine ≈ 1. Three facts come from the data instead of the model:

- `scene_signature(graph)`: a canonical form of an image's scene graph (objects with their
  attributes, relations with converse predicates folded: right of(b, a) = left of(a, b)). Two images
  with the same signature show the same scene, so each one's captions are positives of the other.
- `contrast_classes(text)`: the synonym classes of fact words (`contrast.json`: colours, sizes,
  materials, patterns, spatial relations, counts) a caption mentions. Two captions *contrast* when
  each names a class the other does not ("red … left of" vs "yellow … left of").
- `content_words(text)`: the caption's words without stopwords, in order. Two captions with the
  same words in another order say something else ("a red cube and a blue ball" / "a blue cube and
  a red ball"); the same words in the same order are a rewording ("a cube is to the left of a ball").
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

CONTRAST_FILE = Path(__file__).with_name("contrast.json")
_PUNCT = re.compile(r"[^a-z0-9 ]+")
_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower case, punctuation dropped, spaces collapsed: 'A dog.' == 'a  dog'."""
    return _SPACE.sub(" ", _PUNCT.sub(" ", text.lower())).strip()


@cache
def _contrast() -> dict[str, Any]:
    return json.loads(CONTRAST_FILE.read_text())


@cache
def _phrases() -> tuple[tuple[str, int], ...]:
    """(' phrase ', class index), longest phrases first."""
    out = [(f" {normalize_text(p)} ", k) for k, cls in enumerate(_contrast()["classes"]) for p in cls]
    return tuple(sorted(out, key=lambda x: -len(x[0])))


@cache
def _converse() -> dict[str, str]:
    out: dict[str, str] = {}
    for a, b in _contrast()["converse"]:
        out.setdefault(a, b)
        out.setdefault(b, a)
    return out


@lru_cache(maxsize=1 << 16)
def contrast_classes(text: str) -> frozenset[int]:
    """Indices of the contrast classes `text` mentions (each phrase matched as whole words, a longer
    phrase first: 'on top of' is not also 'on')."""
    s = f" {normalize_text(text)} "
    found: set[int] = set()
    for phrase, k in _phrases():
        if phrase in s:
            found.add(k)
            s = s.replace(phrase, " | ")
    return frozenset(found)


@lru_cache(maxsize=1 << 16)
def content_words(text: str) -> tuple[str, ...]:
    stop = frozenset(_contrast()["stopwords"])
    return tuple(w for w in normalize_text(text).split() if w not in stop)


def word_bag(text: str) -> str:
    """The content words, sorted: equal for the same words in any order."""
    return " ".join(sorted(content_words(text)))


def scene_signature(graph: dict[str, Any] | None) -> str | None:
    """A canonical string of a compact scene graph (`{"objects": [{id, name, attributes}], "relations":
    [[s, p, o]]}`), or None when the graph is missing or has no objects.

    Object ids and boxes are left out; converse predicates are folded onto one direction.
    """
    if not isinstance(graph, dict) or not graph.get("objects"):
        return None
    desc: dict[str, tuple[str, tuple[str, ...]]] = {}
    for o in graph["objects"]:
        if not isinstance(o, dict) or "name" not in o:
            return None
        desc[str(o.get("id"))] = (str(o["name"]), tuple(sorted(str(a) for a in o.get("attributes") or [])))
    conv = _converse()
    rels = []
    for r in graph.get("relations") or []:
        if not isinstance(r, (list, tuple)) or len(r) != 3:
            return None
        s, p, o = (str(x) for x in r)
        if s not in desc or o not in desc:
            return None
        fact = (desc[s], p, desc[o])
        if p in conv:
            fact = min(fact, (desc[o], conv[p], desc[s]))
        rels.append(fact)
    return json.dumps([sorted(desc.values()), sorted(rels)], separators=(",", ":"))
