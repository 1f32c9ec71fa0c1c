"""kgaug.wordnet: the WordNet look-ups the KG uses."""

from __future__ import annotations

from kgaug.kg import KG
from kgaug.wordnet import WordNet


def test_wordnet_helpers(wordnet_ready):
    wn = WordNet()
    assert wn.is_a_either_way("dog", "animal") and not wn.is_a_either_way("dog", "cat")
    assert "cat" not in wn.synonyms("dog", "n") and "sofa" in wn.synonyms("couch", "n")
    kg = KG(wn)
    assert kg.same_object("couch", "sofa") and kg.same_object("dog", "animal") and not kg.same_object("dog", "cat")
    assert kg.same_attribute("grey", "gray") and not kg.same_attribute("red", "blue")
