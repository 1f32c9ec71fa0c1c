"""The KG's corpus counts (kgaug/kg/counts.py): what one image adds, the co-occurrence cap, and
counts merged from workers equal to a sequential count."""

from __future__ import annotations

import pickle
from collections import Counter

from kgaug.kg import KG, CorpusCounts, add_counts
from kgaug.kg import counts as kg_counts
from kgaug.scene_graph import GraphBuilder
from kgaug.wordnet import WordNet


def _image(objects: list[tuple[str, str, list[str]]], relations: tuple = ()):
    b = GraphBuilder()
    for oid, name, atts in objects:
        b.add_object(oid, [name], [], atts)
    for s, p, o in relations:
        b.add_relation(s, p, o)
    return b.graph


def _names(g) -> list[str]:
    return [o[1] for o in g.to_tuples()[0]]


def _ordered(c: CorpusCounts) -> dict[str, list]:
    return {name: list(counter.items()) for name, counter in c.as_dict().items()}


def test_one_image_counts_names_attributes_relations_and_pairs():
    c = CorpusCounts()
    c.add_graph(_image([("1", "dog", ["black", "small"]), ("2", "couch", ["white"]), ("3", "cat", [])],
                       [("1", "on", "2"), ("3", "next to", "2")]))
    assert c.obj == Counter(dog=1, couch=1, cat=1)
    assert c.att == Counter(black=1, small=1, white=1)
    assert c.obj_att == Counter({("dog", "black"): 1, ("dog", "small"): 1, ("couch", "white"): 1})
    assert c.pred == Counter({"on": 1, "next to": 1})
    assert c.subj_pred == Counter({("dog", "on"): 1, ("cat", "next to"): 1})
    assert c.pred_obj == Counter({("on", "couch"): 1, ("next to", "couch"): 1})
    assert c.cooc == Counter({("couch", "dog"): 1, ("cat", "couch"): 1, ("cat", "dog"): 1})  # sorted pairs
    assert list(c.as_dict()) == list(kg_counts.CORPUS_COUNTERS)


def test_only_the_first_objects_of_an_image_pair_up():
    names = [f"thing{i:02d}" for i in range(kg_counts.MAX_COOC_OBJECTS + 4)]
    c = CorpusCounts()
    c.add_graph(_image([(str(i), n, []) for i, n in enumerate(names)]))
    n = kg_counts.MAX_COOC_OBJECTS
    assert len(c.cooc) == n * (n - 1) // 2
    assert not any(names[-1] in pair for pair in c.cooc)


def test_past_the_cap_pairs_seen_once_are_dropped(monkeypatch):
    monkeypatch.setattr(kg_counts, "COOC_CAP", 3)
    kg = KG(WordNet(enabled=False))
    cooc = kg.cooc
    for objects in (["dog", "cat"], ["dog", "cat"], ["cup", "table"], ["man", "hat"], ["bus", "car"], ["man", "hat"]):
        kg.add_graph(_image([(str(i), n, []) for i, n in enumerate(objects)]))
    assert kg.cooc_prunes == 1  # the fourth distinct pair crossed the cap (3); the pairs seen once went
    assert list(kg.cooc.items()) == [(("cat", "dog"), 2), (("hat", "man"), 1)]
    assert kg.cooc is cooc and kg.counts.cooc is cooc  # pruned in place: the questions read it
    assert kg.association("cat", ["dog"]) == 1.0
    assert kg.association("hat", ["man"]) == 0.5  # the first image of a man with a hat was pruned


def test_merged_worker_counts_equal_the_sequential_count(monkeypatch):
    images = [_image([("1", a, [att]), ("2", b, []), ("3", c, [])], [("1", p, "2")])
              for a, b, c, att, p in (("dog", "cat", "rug", "black", "on"), ("man", "horse", "road", "tall", "riding"),
                                      ("dog", "ball", "grass", "brown", "near"), ("cat", "dog", "sofa", "grey", "on"),
                                      ("man", "hat", "dog", "old", "wearing"), ("cup", "table", "dog", "red", "on"))]
    for cap in (4, 8, 1_000_000):  # the cap crossed inside a worker's range, at a merge, never
        monkeypatch.setattr(kg_counts, "COOC_CAP", cap)
        sequential = CorpusCounts()
        for g in images:
            sequential.add_graph(g)
        merged = CorpusCounts()
        for part in (images[:2], images[2:5], images[5:]):
            worker = CorpusCounts()
            for g in part:
                worker.add_graph(g, prune=False)
            sent = pickle.loads(pickle.dumps(worker.as_dict()))  # what comes back from a forked worker
            merged.merge(sent, lambda part=part: (_names(g) for g in part))
        assert _ordered(merged) == _ordered(sequential), cap
        assert merged.cooc_prunes == sequential.cooc_prunes
    assert sequential.cooc_prunes == 0 and CorpusCounts().cooc_prunes == 0


def test_add_counts_adds_values_and_puts_new_keys_last():
    c = Counter({"b": 1, "a": 2})
    add_counts(c, Counter({"c": 5, "a": 1}))
    assert list(c.items()) == [("b", 1), ("a", 3), ("c", 5)]


def test_counting_after_a_question_drops_the_memoised_answers():
    kg = KG(WordNet(enabled=False))
    kg.add_graph(_image([("1", "dog", ["small"])]))
    before = kg.plausibility_att("dog", "black")
    kg.add_graph(_image([("1", "dog", ["black"])]))
    assert kg.plausibility_att("dog", "black") > before
    kg.merge_counts(CorpusCounts().as_dict() | {"obj_att": Counter({("dog", "black"): 5})}, lambda: iter(()))
    assert kg.obj_att["dog", "black"] == 6
