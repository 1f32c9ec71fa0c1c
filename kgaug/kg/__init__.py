"""The knowledge graph (networkx): corpus counts, WordNet, ConceptNet and the lexicon, and the
questions negatives ask of it: is X a synonym of Y, what may replace X, how plausible is a fact.

`KG` (knowledge_graph.py) is the one object a build holds. Its parts:
  counts.py   the corpus counters pass 1 fills (`CorpusCounts`), sequentially or merged from workers;
  loaders.py  outside knowledge read into the graph: ConceptNet, the lexicon's and WordNet's edges;
  queries.py  the questions pass 2 asks (`Questions`, which `KG` is) and the memos of their answers;
  store.py    the networkx graph `finalize` makes, kg.json (`save`) and reading one back (`load_counts`).

The constants are re-exported here for reading; to change one, set it on the module that reads it
(e.g. `kgaug.kg.counts.COOC_CAP`).
"""

from kgaug.kg.counts import COOC_CAP, CORPUS_COUNTERS, MAX_COOC_OBJECTS, CorpusCounts, add_counts
from kgaug.kg.knowledge_graph import KG
from kgaug.kg.loaders import WORDNET_VOCAB, ConceptNet
from kgaug.kg.queries import (
    LOCATIVE_SHARE,
    MAX_OBJECT_CANDIDATES,
    PAIR_MEMO_SIZE,
    PRESENT_SHARE,
    ROLE_SHARE,
    TYPICAL_SHARE,
    Kept,
    MetNames,
    PairMemo,
    Questions,
)

__all__ = [
    "COOC_CAP", "CORPUS_COUNTERS", "KG", "LOCATIVE_SHARE", "MAX_COOC_OBJECTS", "MAX_OBJECT_CANDIDATES",
    "PAIR_MEMO_SIZE", "PRESENT_SHARE", "ROLE_SHARE", "TYPICAL_SHARE", "WORDNET_VOCAB", "ConceptNet",
    "CorpusCounts", "Kept", "MetNames", "PairMemo", "Questions", "add_counts",
]
