"""`KG`, the knowledge graph a build holds: pass 1 counts the corpus into it, outside knowledge is read
into it, `finalize` makes its networkx graph (saved as kg.json), and pass 2 asks it questions."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path

import networkx as nx

from kgaug import lexicon
from kgaug.kg import store
from kgaug.kg.counts import CorpusCounts
from kgaug.kg.loaders import ConceptNet
from kgaug.kg.queries import Questions
from kgaug.scene_graph import SceneGraph
from kgaug.vgmeta import VGMeta
from kgaug.wordnet import WordNet


class KG(Questions):
    """The corpus counts (`counts`), the graph (`graph`, with the ConceptNet edges `conceptnet` reads),
    WordNet (`wn`) and the VG synset maps (`vg`), and the questions pass 2 asks of them (the methods
    of `Questions`, inherited: they are called per candidate, so without a delegating call between).
    Counting after a question was answered drops the answers (`Questions.forget_counted`)."""

    def __init__(self, wordnet: WordNet | None = None, vg: VGMeta | None = None) -> None:
        self.counts = CorpusCounts()
        self.graph = nx.DiGraph()
        self.conceptnet = ConceptNet(self.graph)
        super().__init__(self.counts, self.conceptnet, wordnet or WordNet(enabled=False), vg or VGMeta())

    @property
    def conceptnet_rows(self) -> int:
        """ConceptNet assertions read into the graph (0: the ConceptNet tests of the questions are off)."""
        return self.conceptnet.rows

    @property
    def conceptnet_skipped(self) -> Counter:
        return self.conceptnet.skipped

    @property
    def cooc_prunes(self) -> int:
        return self.counts.cooc_prunes

    # -- counting (pass 1) ----------------------------------------------------------------------
    def add_graph(self, g: SceneGraph, prune: bool = True) -> None:
        """Count one image (see `CorpusCounts.add_graph`)."""
        if self.answered():
            self.forget_counted()
        self.counts.add_graph(g, prune)

    def corpus_counts(self) -> dict[str, Counter]:
        """The corpus counters (what a worker sends back for `merge_counts`)."""
        return self.counts.as_dict()

    def merge_counts(self, counts: dict[str, Counter], images: Callable[[], Iterable[list[str]]]) -> None:
        """Add a worker's counts of the next range of images (see `CorpusCounts.merge`)."""
        if self.answered():
            self.forget_counted()
        self.counts.merge(counts, images)

    # -- outside knowledge ----------------------------------------------------------------------
    def add_conceptnet(self, path: Path) -> None:
        """Read ConceptNet's assertions dump, keeping the edges that touch a corpus or lexicon concept
        (see `ConceptNet.read`)."""
        self.conceptnet.read(path, set(self.obj) | set(self.att) | set(lexicon.attribute_category()))

    # -- graph and persistence ------------------------------------------------------------------
    def finalize(self) -> nx.DiGraph:
        """Put the counts, the lexicon and WordNet into the graph (see `store.finalize`)."""
        self.forget_all()
        self.conceptnet.forget()
        return store.finalize(self.graph, self.counts, self.wn)

    def save(self, path: Path) -> None:
        store.save(self.graph, path)

    def load_counts(self, path: Path) -> None:
        """Merge a saved kg.json (a previous run) into this one: corpus counts and ConceptNet edges."""
        store.load_counts(path, self.counts, self.graph)
