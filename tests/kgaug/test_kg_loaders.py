"""Outside knowledge read into the KG (kgaug/kg/loaders.py): ConceptNet rows from a dump file, the
lexicon's and WordNet's edges."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import networkx as nx

from kgaug.kg import KG, ConceptNet
from kgaug.kg.loaders import add_lexicon_edges, add_wordnet_edges
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet


def _row(rel: str, a: str, b: str, extra: str | None = None) -> str:
    parts = [f"/a/[/r/{rel}/,{a},{b}/]", f"/r/{rel}", a, b]
    return "\t".join(parts + ([extra] if extra is not None else []))


def _dump(path: Path) -> Path:
    path.write_text("\n".join([
        _row("IsA", "/c/en/puppy/n", "/c/en/dog", json.dumps({"weight": 2.5})),
        _row("HasProperty", "/c/en/dog", "/c/en/loyal"),  # no json: weight 1
        _row("AtLocation", "/c/en/ice_cream", "/c/en/dog", "not json"),  # bad json: weight 1
        _row("IsA", "/c/fr/chien", "/c/en/dog"),  # not English
        "a malformed row",
        _row("IsA", "/c/en/spoon", "/c/en/cutlery"),  # touches no word of the corpus: not kept
        _row("Synonym", "/c/en/dog", "/c/en/dog/n"),  # a word to itself: not kept
    ]) + "\n")
    return path


def test_conceptnet_rows_english_only_touching_the_vocabulary(tmp_path: Path):
    g = nx.DiGraph()
    cn = ConceptNet(g)
    assert cn.neighbours("dog", ("cn:IsA",)) == []  # nothing read yet
    cn.read(_dump(tmp_path / "assertions.tsv"), {"dog"})
    assert cn.rows == 3 and cn.skipped == Counter({"not English": 1, "malformed row": 1})
    assert sorted(g.edges(data=True)) == [
        ("cn:dog", "cn:loyal", {"kind": "cn:HasProperty", "weight": 1.0}),
        ("cn:ice cream", "cn:dog", {"kind": "cn:AtLocation", "weight": 1.0}),
        ("cn:puppy", "cn:dog", {"kind": "cn:IsA", "weight": 2.5}),
    ]
    assert cn.neighbours("dog", ("cn:IsA",)) == ["puppy"]  # either direction
    assert cn.neighbours("dog", ("cn:IsA", "cn:HasProperty", "cn:AtLocation")) == ["ice cream", "loyal", "puppy"]
    assert cn.neighbours("cat", ("cn:IsA",)) == []


def test_the_kg_asks_conceptnet_after_reading_it(tmp_path: Path):
    kg = KG(WordNet(enabled=False))
    b = GraphBuilder()
    b.add_object("1", ["dog"], [], ["loyal"])
    b.add_object("2", ["puppy"])
    kg.add_graph(b.graph)
    without = kg.plausibility_att("dog", "loyal")
    kg = KG(WordNet(enabled=False))
    kg.add_graph(b.graph)
    kg.add_conceptnet(_dump(tmp_path / "assertions.tsv"))
    assert kg.conceptnet_rows == 3 and kg.conceptnet_skipped["not English"] == 1
    assert kg.same_object("dog", "puppy") and kg.same_objects("dog", {"puppy", "cat"}) == {"puppy"}
    assert kg.plausibility_att("dog", "loyal") > without  # ConceptNet says dogs are loyal


def test_lexicon_edges_predicate_antonyms_and_attribute_categories():
    g = nx.DiGraph()
    add_lexicon_edges(g, Counter(red=3))
    assert g.edges["pred:on", "pred:under"] == {"kind": "antonym", "source": "lexicon"}
    assert g.nodes["att:red"] == {"category": "colour", "count": 3}
    assert g.nodes["att:wooden"] == {"category": "material", "count": 0}


def test_wordnet_edges_of_corpus_words(wordnet_ready):
    g = nx.DiGraph()
    add_wordnet_edges(g, WordNet(), Counter(couch=3, sofa=1, dog=2), Counter(wet=2))
    assert g.edges["obj:couch", "obj:sofa"]["kind"] == "synonym"
    assert g.edges["obj:dog", "wn:canine"] == {"kind": "is_a", "source": "wordnet"}  # not a corpus word
    assert g.edges["att:wet", "att:dry"]["kind"] == "antonym"
    assert ("obj:couch", "obj:lounge") not in g.edges  # a synonym the corpus never names
