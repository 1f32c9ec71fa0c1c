"""Adversarial refinement (issue 19, goal 3): `kgaug build` learns a text-only LM from the corpus's own
captions and thins, per type, the negatives that the LM tells from their caption, until as many are less
likely than their caption as more likely; what it turns down is counted."""

from __future__ import annotations

import random

from kgaug import fluency
from kgaug.captions import pseudo_captions
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.negatives import Generator
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet


def test_acceptance_keeps_the_leaning_side_in_proportion_to_the_other():
    rules = fluency.acceptance({"replace_rel": [-0.3, -0.2, -0.1, -0.4, 0.2] * 10,  # 4 less likely, 1 more
                                "add_obj": [0.1, 0.2, -0.1, 0.0] * 20,  # 2 more, 1 less, a tie
                                "swap_att": [0.1, -0.1] * 30,
                                "swap_obj": [-0.1] * 49,  # too few to say it leans
                                "add_att": [-0.1] * 60}, floor=0.2)
    assert rules["replace_rel"] == (-1, 0.25)
    assert rules["add_obj"] == (1, 0.5)
    assert rules["swap_att"] == (0, 1.0)
    assert rules["swap_obj"] == (0, 1.0)
    assert rules["add_att"] == (-1, 0.2)  # never below the floor: a type is thinned, not removed


def test_the_lm_finds_the_rarer_preposition_less_likely():
    lm = fluency.BigramLM.fit(["a cat on a table", "a cup on a table", "a dog on a bed", "a cat under a table"])
    assert fluency.gap(lm, "a dog under a bed", "a dog on a bed") < 0
    assert fluency.side(fluency.gap(lm, "a dog under a bed", "a dog on a bed")) == -1
    assert fluency.side(0.0) == 0


def _world():
    b = GraphBuilder()
    for i, (name, atts) in enumerate([("cat", ["black"]), ("table", ["wooden"]), ("cup", ["red"])]):
        b.add_object(str(i), [name], [], atts)
    b.add_relation("0", "on", "1")
    b.add_relation("2", "on", "1")
    return b.graph


ADDS_AND_REPLACES = ("add_att", "add_obj", "replace_att", "replace_obj")


def _plain_and_refined(keep: float):
    """The world's KG and LM, a generator without refinement and one keeping a negative less likely than
    its caption with probability `keep` (the other types untouched)."""
    g = _world()
    kg = KG(WordNet(enabled=False))
    kg.add_graph(g)
    kg.finalize()
    lm = fluency.BigramLM.fit(["a black cat on a wooden table", "a red cup on a wooden table"] * 5)
    plain, refined = Generator(kg, per_type=4), Generator(kg, per_type=4)
    refined.lms, refined.lm = (lm,), lm
    refined.refine = {k: (-1, keep) for k in ADDS_AND_REPLACES}
    return g, kg, lm, plain, refined


def test_a_generator_keeps_none_of_the_refused_side_and_counts_them():
    g, kg, lm, plain, refined = _plain_and_refined(0.0)
    before, after = [], []
    for seed in range(8):
        caps = pseudo_captions(g, 3, random.Random(seed))
        before += plain.for_image(caps, Evidence(g, kg), random.Random(seed))
        after += refined.for_image(caps, Evidence(g, kg), random.Random(seed))
    less = [n for n in before if n.type in refined.refine and fluency.gap(lm, n.text, n.caption) < 0]
    assert less, "the world should give negatives less likely than their caption"
    assert not [n for n in after if n.type in refined.refine and fluency.gap(lm, n.text, n.caption) < 0]
    assert sum(n for (k, r), n in refined.rejected.items() if r == fluency.REFINED) > 0
    assert not [k for k, r in plain.rejected if r == fluency.REFINED]


def test_a_type_kept_whole_gives_the_negatives_of_no_refinement():
    g, kg, _, plain, whole = _plain_and_refined(1.0)  # --refine-floor 1
    for seed in range(4):
        caps = pseudo_captions(g, 3, random.Random(seed))
        a = plain.for_image(caps, Evidence(g, kg), random.Random(seed))
        b = whole.for_image(caps, Evidence(g, kg), random.Random(seed))
        assert [n.row() for n in a] == [n.row() for n in b]
