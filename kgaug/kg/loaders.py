"""Outside knowledge read into the KG's graph: ConceptNet assertions (`ConceptNet`), and at `finalize`
the lexicon's predicate antonyms and attribute categories and WordNet's synonyms, co-hyponyms,
hypernyms and antonyms of the most frequent corpus words (`add_lexicon_edges`, `add_wordnet_edges`).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import networkx as nx

from kgaug import lexicon
from kgaug.wordnet import WordNet

WORDNET_VOCAB = 1000  # most frequent objects/attributes that get WordNet edges in the saved graph


class ConceptNet:
    """ConceptNet assertions in the KG's graph: nodes `cn:<word>`, edges of kind `cn:<Relation>` with a
    weight. `read` adds them from the official dump; `neighbours` is what the KG's questions ask."""

    def __init__(self, graph: nx.DiGraph) -> None:
        self.graph = graph  # the KG's graph (shared, filled in place)
        self.rows = 0  # assertions read (kept)
        self.skipped: Counter = Counter()  # rows not read, by reason
        self._neighbours: dict[tuple, list[str]] = {}  # (word, kinds) -> `neighbours` answer

    def read(self, path: Path, vocab: set[str]) -> None:
        """Read the official assertions dump (TSV: uri, relation, start, end, json), English only,
        keeping edges that touch a word of `vocab` (bounded by vocabulary, not file size)."""
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                parts = line.rstrip("\n").split("\t")
                if len(parts) < 4 or not parts[1].startswith("/r/"):
                    self.skipped["malformed row"] += 1
                    continue
                if not (parts[2].startswith("/c/en/") and parts[3].startswith("/c/en/")):
                    self.skipped["not English"] += 1
                    continue
                a = lexicon.clean(parts[2].split("/")[3])
                b = lexicon.clean(parts[3].split("/")[3])
                if not a or not b or a == b or (a not in vocab and b not in vocab):
                    continue
                weight = 1.0
                if len(parts) > 4:
                    try:
                        weight = float(json.loads(parts[4]).get("weight", 1.0))
                    except (ValueError, AttributeError):
                        weight = 1.0
                self.graph.add_edge(f"cn:{a}", f"cn:{b}", kind=f"cn:{parts[1][3:]}", weight=weight)
                self.rows += 1

    def neighbours(self, word: str, kinds: tuple[str, ...]) -> list[str]:
        """ConceptNet neighbours of `word` by these relations (either direction), sorted, cached; none
        until `read` has kept a row."""
        if not self.rows:
            return []
        key = (word, kinds)
        if key not in self._neighbours:
            node = f"cn:{word}"
            out: list[str] = []
            if node in self.graph:
                out = [v[3:] for v, d in self.graph[node].items() if d.get("kind") in kinds]
                out += [u[3:] for u, _, d in self.graph.in_edges(node, data=True) if d.get("kind") in kinds]
            self._neighbours[key] = sorted(set(out))
        return self._neighbours[key]

    def forget(self) -> None:
        """Drop the cached neighbours (the graph changed)."""
        self._neighbours.clear()


def add_lexicon_edges(g: nx.DiGraph, att: Counter) -> None:
    """The lexicon's predicate antonyms, and its attribute categories (nodes `att:<word>` with their
    `category` and corpus count)."""
    for a, b in lexicon.load("relations")["antonyms"]:
        g.add_edge(f"pred:{a}", f"pred:{b}", kind="antonym", source="lexicon")
    for cat, words in lexicon.load("attributes")["categories"].items():
        for w in words:
            g.add_node(f"att:{w}", category=cat, count=att[w])


def add_wordnet_edges(g: nx.DiGraph, wn: WordNet, obj: Counter, att: Counter) -> None:
    """WordNet edges of the `WORDNET_VOCAB` most frequent objects (synonym and co-hyponym objects the
    corpus has, hypernyms: `wn:<name>` nodes where the corpus lacks them) and attributes (antonyms)."""
    for name, _ in obj.most_common(WORDNET_VOCAB):
        for syn in sorted(wn.synonyms(name, "n")):
            if syn in obj:
                g.add_edge(f"obj:{name}", f"obj:{syn}", kind="synonym", source="wordnet")
        for c in wn.cohyponyms(name):
            if c in obj:
                g.add_edge(f"obj:{name}", f"obj:{c}", kind="cohyponym", source="wordnet")
        for h in wn.hypernyms(name):
            g.add_edge(f"obj:{name}", f"obj:{h}" if h in obj else f"wn:{h}", kind="is_a", source="wordnet")
    for name, _ in att.most_common(WORDNET_VOCAB):
        for ant in wn.antonyms(name, "a"):
            g.add_edge(f"att:{name}", f"att:{ant}", kind="antonym", source="wordnet")
