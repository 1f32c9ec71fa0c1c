"""The KG as a graph and as kg.json (kgaug/kg/store.py): `finalize`, `save`, `load_counts`."""

from __future__ import annotations

import json
from pathlib import Path

from kgaug.kg import KG
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet


def _corpus_kg(tmp_path: Path) -> KG:
    kg = KG(WordNet(enabled=False))
    for dog_att, place in (("black", "rug"), ("black", "field"), ("brown", "field"), ("small", "rug")):
        b = GraphBuilder()
        b.add_object("1", ["dog"], [], [dog_att])
        b.add_object("2", [place], [], ["green"] if place == "field" else [])
        b.add_object("3", ["cat"])
        b.add_relation("1", "on", "2")
        b.add_relation("3", "chasing", "1")
        kg.add_graph(b.graph)
    cn = tmp_path / "cn.tsv"
    cn.write_text("/a/x\t/r/HasProperty\t/c/en/dog\t/c/en/loyal\t{\"weight\": 2.0}\n")
    kg.add_conceptnet(cn)
    return kg


def _answers(kg: KG) -> list:
    return [kg.plausibility_att("dog", "black"), kg.plausibility_att("dog", "loyal"),
            kg.plausibility_rel("dog", "on", "field"), kg.plausibility_cooc("cat", ["dog"]),
            kg.typical("dog", "black"), kg.typical("field", "green"), kg.likely_present("cat", ["dog"]),
            kg.association("rug", ["dog"]), kg.reversible("cat", "chasing", "dog"), kg.seen_attributes("dog"),
            kg.addable_attributes("dog"), kg.cooccurring("rug")]


def test_finalize_puts_counts_lexicon_and_conceptnet_in_the_graph(tmp_path: Path):
    kg = _corpus_kg(tmp_path)
    g = kg.finalize()
    assert g is kg.graph
    assert g.nodes["obj:dog"] == {"count": 4} and g.nodes["pred:on"] == {"count": 4}
    assert g.nodes["att:black"] == {"count": 2, "category": "colour"}
    assert g.edges["obj:dog", "att:black"] == {"kind": "has_attribute", "count": 2}
    assert g.edges["obj:dog", "pred:on"] == {"kind": "subject_of", "count": 4}
    assert g.edges["pred:on", "obj:field"] == {"kind": "object_of", "count": 2}
    assert g.edges["obj:cat", "obj:dog"] == {"kind": "co_occurs", "count": 4}
    assert g.edges["pred:on", "pred:under"]["source"] == "lexicon"
    assert g.edges["cn:dog", "cn:loyal"] == {"kind": "cn:HasProperty", "weight": 2.0}


def test_saved_kg_read_back_gives_the_same_answers_and_file(tmp_path: Path):
    kg = _corpus_kg(tmp_path)
    kg.finalize()
    kg.save(tmp_path / "kg.json")
    data = json.loads((tmp_path / "kg.json").read_text())
    assert [n["id"] for n in data["nodes"]] == sorted(n["id"] for n in data["nodes"])
    again = KG(WordNet(enabled=False))
    again.load_counts(tmp_path / "kg.json")
    assert {n: dict(c) for n, c in again.corpus_counts().items()} == {n: dict(c) for n, c in kg.corpus_counts().items()}
    assert again.graph.edges["cn:dog", "cn:loyal"]["weight"] == 2.0  # ConceptNet edges come back
    assert again.conceptnet_rows == 0  # ... but are asked only once a dump is read (as before the split)
    assert again.graph.number_of_edges() == 1  # lexicon edges are made again by finalize, not read
    again.finalize()
    again.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "kg.json").read_bytes()
    kg_answers = _answers(kg)
    assert _answers(again)[0] == kg_answers[0] and _answers(again)[2:] == kg_answers[2:]


def test_load_counts_adds_a_previous_run_to_this_one(tmp_path: Path):
    kg = _corpus_kg(tmp_path)
    kg.finalize()
    kg.save(tmp_path / "kg.json")
    more = _corpus_kg(tmp_path)
    more.load_counts(tmp_path / "kg.json")
    assert more.obj["dog"] == 8 and more.obj_att["dog", "black"] == 4 and more.cooc["cat", "dog"] == 8
    assert more.pred["chasing"] == 8 and more.subj_pred["cat", "chasing"] == 8 and more.pred_obj["on", "rug"] == 4
