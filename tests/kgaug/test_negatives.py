"""kgaug.negatives: the eight edits, each false for the image, and how a slot's candidates are chosen."""

from __future__ import annotations

import random

from kgaug.captions import pseudo_captions
from kgaug.evidence import Evidence
from kgaug.negatives import TYPES, Generator, apply_edits, derive_fact
from tests.kgaug.helpers import kg_for_negatives, small_graph


def test_negatives_every_type_and_false():
    g = small_graph()
    kg = kg_for_negatives(g, image_graph_twice=True)
    gen = Generator(kg, per_type=3, complete_graphs=True)
    rng = random.Random(1)
    caps = pseudo_captions(g, 6, rng)
    negs = gen.for_image(caps, Evidence(g, kg), rng)
    assert {n.type for n in negs} == set(TYPES)
    ev = Evidence(g, kg)
    for n in negs:
        assert not ev.holds(derive_fact(n.type, n.fact, n.from_, n.to)), n
        for f in n.new_facts:
            assert not ev.holds(f), n
    assert not any(n.to == "gray" for n in negs)


def test_apply_edits_reinflects_articles_and_case():
    assert apply_edits("A black dog.", [((2, 7), "orange")]) == "An orange dog."
    assert apply_edits("A BLUE SHIRT", [((2, 6), "green")]) == "A GREEN SHIRT"
    assert derive_fact("reverse_rel", "on(dog,couch)", "dog", "couch") == "on(couch,dog)"
    assert derive_fact("swap_obj", "black(dog)", "dog", "couch") == "black(couch)"
    assert derive_fact("replace_rel", "on(dog,couch)", "on", "under") == "under(dog,couch)"
    assert derive_fact("replace_obj", "dog", "dog", "cat") == "cat"


def test_negatives_expand_slots_lazily_and_keep_the_most_plausible_of_each_slot():
    g = small_graph()
    kg = kg_for_negatives(g)
    caps = pseudo_captions(g, 6, random.Random(3))
    ev = Evidence(g, kg)
    expanded: list[str] = []

    class Counting(Generator):  # count slot expansions: with one negative per type, few slots are scored
        pass

    for kind in TYPES:
        def counting(self, *slot, _k=kind, _f=getattr(Generator, kind)):
            expanded.append(_k)
            return _f(self, *slot)
        setattr(Counting, kind, counting)
    gen = Counting(kg, per_type=1, complete_graphs=True)
    negs = gen.for_image(caps, ev, random.Random(5))
    total = sum(len(getattr(gen, k + "_slots")(c)) for k in TYPES for c in caps)
    assert len(negs) == len(set(TYPES)) and len(expanded) < total
    fresh = Generator(kg, per_type=1, complete_graphs=True)
    for n in negs:  # no valid edit of the same slot is more plausible than the one kept
        for c in caps:
            for slot in getattr(fresh, n.type + "_slots")(c):
                pool = getattr(fresh, n.type)(*slot)
                if not any(t[1].text == n.caption and t[4] == n.to and t[3] == n.from_ for t in pool):
                    continue
                valid = [t[0] for t in pool if not any(ev.holds(f) for f in t[6])]
                assert n.plausibility >= max(valid), (n, valid)
