"""kgaug.lexicon: inflection, sensitive tags and the attribute rules of the data-file lexicon."""

from __future__ import annotations

import random

from kgaug import lexicon
from kgaug.captions import pseudo_captions
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet


def test_lexicon_inflection():
    assert lexicon.article("apple") == "an" and lexicon.article("unicorn") == "a" and lexicon.article("hour") == "an"
    assert lexicon.fix_articles("A orange cat and a umbrella near an dog") == "An orange cat and an umbrella near a dog"
    assert lexicon.singular("benches") == ("bench", True) and lexicon.singular("men") == ("man", True)
    assert lexicon.singular("glass") == ("glass", False) and lexicon.singular("pants") == ("pants", True)
    assert lexicon.plural("bench") == "benches" and lexicon.plural("puppy") == "puppies"
    assert lexicon.plural("woman") == "women"
    assert lexicon.determiner("paperwork", False, "paperwork") == "" and lexicon.determiner("desk", False, "desk") == "a"
    assert lexicon.predicate("has on") == "wearing"
    assert lexicon.predicate("  ON ") == "on" and lexicon.predicate("is wearing a") == "wearing"
    assert lexicon.predicate("wears") == "wearing" and lexicon.predicate("and") == ""
    assert lexicon.gerund("ride") == "riding" and lexicon.gerund("sit") == "sitting"
    assert lexicon.sensitive_tags(["A woman and her dog"]) == {"gender": "female"}
    assert lexicon.sensitive_tags(["a man and a woman"]) == {"gender": "mixed"}


def test_attribute_rules_from_the_lexicon():
    kg = KG(WordNet(enabled=False))
    assert "large" not in kg.attribute_candidates("tall") and "short" in kg.attribute_candidates("tall")
    assert "blue" in kg.attribute_candidates("red") and "red" not in kg.attribute_candidates("red")
    b = GraphBuilder()
    b.add_object("1", ["woman"], [], ["young"])
    b.add_object("2", ["chair"], [], ["brown"])
    b.add_object("3", ["park"], [], [])
    b.add_relation("1", "sitting on", "2")
    g = b.graph
    kg.add_graph(g)
    other = GraphBuilder()  # the corpus has seen wooden and small chairs, open parks
    other.add_object("1", ["chair"], [], ["wooden", "small"])
    other.add_object("2", ["park"], [], ["open"])
    kg.add_graph(other.graph)
    kg.finalize()
    gen = Generator(kg, per_type=50, complete_graphs=True)  # the graph is all there is: any addition is false
    from kgaug.captions import NP, Caption

    park = Caption("a skate park.", [NP("park", False, (8, 12), (0, 12), [("skate", (2, 7))])], [], "human")
    caps = pseudo_captions(g, 6, random.Random(0)) + [park]
    negs = gen.for_image(caps, Evidence(g, kg), random.Random(0))
    adds = [n for n in negs if n.type == "add_att"]
    assert adds and not any(n.fact.endswith("(woman)") and n.to in ("white", "black", "brown") for n in adds)
    assert any(n.text == "a brown wooden chair." or n.text.startswith("a small brown chair") for n in adds)
    assert any(n.text.startswith("an open skate park") or n.text.startswith("a red skate park") for n in adds)
    assert not any(n.text.startswith("a skate red park") for n in adds)
