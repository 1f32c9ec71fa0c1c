"""kgaug.evidence: what holds for an image (synonyms, antonyms, symmetric and phrasal relations)."""

from __future__ import annotations

from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet
from tests.kgaug.helpers import small_graph


def test_evidence_synonyms_antonyms_and_symmetry():
    g = small_graph()
    kg = KG(WordNet(enabled=False))
    ev = Evidence(g, kg)
    assert ev.holds("under(couch,dog)")  # on(dog,couch) implies it
    assert ev.holds("next to(couch,cat)") and ev.holds("near(couch,cat)")  # symmetric, same group
    assert ev.holds("beside(cat,couch)")  # same predicate group
    assert ev.holds("sitting on(dog,couch)")
    assert not ev.holds("on(couch,dog)")


def test_a_phrasal_verb_states_its_bare_verb():
    """"holding up a sign" is a way of holding it: a negative "holding a sign" would be true."""
    b = GraphBuilder()
    b.add_object("1", ["man"])
    b.add_object("2", ["sign"])
    b.add_relation("1", "holding up", "2")
    ev = Evidence(b.graph, KG(WordNet(enabled=False)))
    assert ev.holds("holding(man,sign)") and ev.holds("holding up(man,sign)")
    assert not ev.holds("holding down(man,sign)") and not ev.holds("throwing(man,sign)")
    assert not ev.holds("holding(sign,man)")
