"""Scene-graph word vectors for `--cluster-on graph` (pure: rows in, float32 matrix out).

A row's vector is the bag of the words its scene graph uses — object names and attribute words,
each counted once, relations and word order left out — hashed into `dim` buckets (crc32, so the
same words give the same vector on every machine), IDF-weighted over the table and L2-normalised.
k-means over these vectors puts images that use the *same words* in one cluster: "a red cube left
of a blue ball", "a blue ball left of a red cube" and "a blue cube left of a red ball" land together,
so a cluster batch's in-batch negatives differ from each other only in how the words are bound and
arranged — the confusions of a bag-of-words model, on the image side (docs/RESULTS.md). Rows
without a graph fall back to the content words of their captions, in the same space.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from collections.abc import Iterable

import numpy as np

DEFAULT_DIM = 1024
_WORD = re.compile(r"[a-z][a-z0-9'\-]*")
STOPWORDS = frozenset("a an the is are was were there this that of to on in at with and or its it his her their "
                      "some picture photo image".split())


def _graph(row: dict) -> dict | None:
    g = row.get("scene_graph")
    if isinstance(g, str):
        try:
            g = json.loads(g)
        except ValueError:
            return None
    return g if isinstance(g, dict) and g.get("objects") else None


def row_words(row: dict) -> frozenset[str]:
    """The words of the row's scene graph (object names and attributes), else of its captions."""
    g = _graph(row)
    if g is not None:
        text = " ".join(f"{o.get('name', '')} {' '.join(o.get('attributes') or [])}" for o in g["objects"]
                        if isinstance(o, dict))
    else:
        text = " ".join(str(c) for c in row.get("captions") or [])
    return frozenset(w for w in _WORD.findall(text.lower()) if w not in STOPWORDS)


def has_graph(row: dict) -> bool:
    return _graph(row) is not None


def bucket(word: str, dim: int) -> int:
    return zlib.crc32(word.encode()) % dim


def graph_vectors(rows: Iterable[dict], dim: int = DEFAULT_DIM) -> np.ndarray:
    """[n, dim] float32, L2-normalised (an empty bag stays a zero row)."""
    bags = [row_words(r) for r in rows]
    df: dict[str, int] = {}
    for b in bags:
        for w in b:
            df[w] = df.get(w, 0) + 1
    n = len(bags)
    x = np.zeros((n, dim), np.float32)
    for i, b in enumerate(bags):
        for w in sorted(b):
            x[i, bucket(w, dim)] += math.log((1 + n) / (1 + df[w])) + 1.0
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(norms, 1e-12)


def distinct_rows(x: np.ndarray) -> int:
    return int(np.unique(x, axis=0).shape[0]) if len(x) else 0
