"""kgaug.captions: pseudo-captions that read as English and state only the graph's facts."""

from __future__ import annotations

import json
import random

from kgaug import lexicon
from kgaug.captions import caption_from_dict, caption_to_dict, pseudo_captions
from kgaug.kg import KG
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet
from tests.kgaug.helpers import small_graph


def test_pseudo_captions_are_fluent_and_grounded():
    g = small_graph()
    caps = pseudo_captions(g, 3, random.Random(0))
    assert {c.style for c in caps} == {"attribute", "relation", "dense"}
    for c in caps:
        assert set(c.facts()) <= g.facts(), c.text
        assert "a dogs" not in c.text and "a black dogs" not in c.text
        assert caption_from_dict(json.loads(json.dumps(caption_to_dict(c)))).facts() == c.facts()
    rel = next(c for c in caps if c.style == "relation")
    assert " on " in rel.text or " next to " in rel.text


def test_counts_and_quantities_never_follow_is():
    """'the people are four' is no English: such attributes stay before the noun ('four people')."""
    kg = KG(WordNet(enabled=False))
    texts = set()
    for name, att in (("people", "four"), ("trains", "many"), ("window", "locked")):
        b = GraphBuilder()
        b.add_object("1", [name], [], [att])
        texts |= {c.text for seed in range(20)
                  for c in pseudo_captions(b.graph, 3, random.Random(seed), kg.describable, kg.predicative)}
    assert "four people." in texts and not any(" are four" in t or " are many" in t for t in texts), texts
    assert "the window is locked." in texts  # an ordinary attribute still reads after 'is'
    assert not kg.predicative("four") and not lexicon.predicative("several") and lexicon.predicative("black")
