"""Corpus counts: how often the scene graphs name each object, attribute and predicate, and each pairing
of them (an attribute on an object, a subject of a predicate, a predicate's object, two objects in one
image). Pass 1 counts images one by one (`CorpusCounts.add_graph`), or counts ranges of images in forked
workers whose counters `CorpusCounts.merge` adds in file order, with the same values and key order.
"""

from __future__ import annotations

import itertools
import operator
from collections import Counter
from collections.abc import Callable, Iterable

from kgaug.scene_graph import O_ATTRIBUTES, O_ID, O_NAME, SceneGraph

CORPUS_COUNTERS = ("obj", "att", "pred", "obj_att", "subj_pred", "pred_obj", "cooc")
MAX_COOC_OBJECTS = 16  # per image: pairs grow quadratically, the first objects suffice for counts
COOC_CAP = 1_000_000  # distinct pairs kept in memory; beyond it, pairs seen once are dropped
_ID, _NAME, _SECOND = operator.itemgetter(O_ID), operator.itemgetter(O_NAME), operator.itemgetter(1)  # of to_tuples objects; of pairs


def add_counts(counter: Counter, more: Counter) -> None:
    """`counter.update(more)` (values added; new keys after the old, in `more`'s order) in C-level loops:
    Counter.update adds a mapping key by key in Python."""
    keys = list(more)
    totals = list(map(operator.add, map(counter.get, keys, itertools.repeat(0)), more.values()))
    dict.update(counter, zip(keys, totals))


class CorpusCounts:
    """The corpus counters (`CORPUS_COUNTERS`): `obj`, `att`, `pred` count names; `obj_att` (object,
    attribute), `subj_pred` (subject, predicate), `pred_obj` (predicate, object) and `cooc` (two objects
    of one image, sorted) count pairs. A counter is updated in place and never replaced: the KG's
    questions read these very Counters."""

    def __init__(self) -> None:
        self.obj: Counter = Counter()
        self.att: Counter = Counter()
        self.pred: Counter = Counter()
        self.obj_att: Counter = Counter()
        self.subj_pred: Counter = Counter()
        self.pred_obj: Counter = Counter()
        self.cooc: Counter = Counter()
        self.cooc_prunes = 0  # times the co-occurrence pairs seen once were dropped (`COOC_CAP`)

    def add_graph(self, g: SceneGraph, prune: bool = True) -> None:
        """Count one image. `prune=False` (a worker counting one range, merged by `merge`) never drops
        rare co-occurrence pairs: the merge does, where the sequential count would."""
        objects, relations = g.to_tuples()  # a GraphBuilder's graph holds this form: nothing is made
        obj_names = list(map(_NAME, objects))
        self.obj.update(obj_names)  # one C-level counting loop per counter and image
        obj_att = [(o[O_NAME], a) for o in objects if o[O_ATTRIBUTES] for a in o[O_ATTRIBUTES]]
        if obj_att:
            self.att.update(map(_SECOND, obj_att))
            self.obj_att.update(obj_att)
        names = dict(zip(map(_ID, objects), obj_names))
        if relations:
            subj_pred, pred_obj = [], []
            for s, p, o in relations:
                s, o = names.get(s), names.get(o)
                if s is not None and o is not None:
                    subj_pred.append((s, p))
                    pred_obj.append((p, o))
            self.pred.update(map(_SECOND, subj_pred))
            self.subj_pred.update(subj_pred)
            self.pred_obj.update(pred_obj)
        self.count_cooc(list(names.values()), prune)

    def count_cooc(self, names: list[str], prune: bool = True) -> None:
        """Pairs of the image's first objects (`names` in graph order). Past `COOC_CAP` distinct pairs
        (with `prune`), the pairs seen once are dropped: bounded memory on full VG, and rare pairs say
        little anyway."""
        cooc = self.cooc
        cooc.update(itertools.combinations(sorted(set(names[:MAX_COOC_OBJECTS])), 2))  # C-level counting
        if prune and len(cooc) > COOC_CAP:
            kept = {k: n for k, n in cooc.items() if n > 1}
            cooc.clear()  # in place (the order of the kept pairs is theirs): the questions hold this Counter
            dict.update(cooc, kept)
            self.cooc_prunes += 1

    def as_dict(self) -> dict[str, Counter]:
        """The counters by name (what a worker sends back for `merge`)."""
        return {name: getattr(self, name) for name in CORPUS_COUNTERS}

    def merge(self, counts: dict[str, Counter], images: Callable[[], Iterable[list[str]]]) -> None:
        """Add the counts of the next range of images, counted apart by `add_graph(prune=False)`: the same
        counters, in the same key order, as counting those images here one by one. `images` gives each
        image's object names (graph order); it is read only when pruning may fall inside the range."""
        for name in CORPUS_COUNTERS:
            if name != "cooc":
                add_counts(getattr(self, name), counts[name])
        cooc = counts["cooc"]
        if len(self.cooc) + len(cooc) > COOC_CAP and \
                len(self.cooc) + sum(1 for k in cooc if k not in self.cooc) > COOC_CAP:
            for names in images():  # the cap is crossed inside the range: prune where counting here would
                self.count_cooc(names)
        else:
            add_counts(self.cooc, cooc)
