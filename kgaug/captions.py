"""Captions as text plus the spans that state graph facts, and pseudo-caption realisation.

A `Caption` is what both the spaCy parser (human captions) and the realiser (pseudo-captions)
produce: the text, its noun phrases (name, number, attribute spans) and relation spans. Hard
negatives are span edits on this one representation, so they work the same on both kinds.
Pseudo-captions state graph facts only, in three focus styles: attribute, relation and dense.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

from kgaug import lexicon
from kgaug.scene_graph import Obj, SceneGraph, attribute_fact, relation_fact

Span = tuple[int, int]
# Attribute order inside a noun phrase ("a small round red wooden table").
ORDER = {"count": 0, "size": 1, "state": 2, "shape": 3, "texture": 4, "colour": 5, "pattern": 6, "material": 7}


@dataclass(slots=True)  # pass 2 makes a few per image: slotted ones are cheaper to make
class NP:
    name: str  # canonical singular object name
    plural: bool
    head: Span  # the word(s) naming the object
    span: Span  # the whole noun phrase (determiner .. head)
    atts: list[tuple[str, Span]] = field(default_factory=list)
    subject_of_verb: bool = False  # a finite verb agrees with it: number must not change
    # a singular subject's finite verbs and their plural forms ('A plane is flying': is -> are), what an
    # object put beside it must change; empty where none is known
    agree: list[tuple[Span, str]] = field(default_factory=list)


@dataclass(slots=True)
class RelSlot:
    pred: str  # canonical predicate
    subj: int  # index into Caption.nps
    obj: int
    span: Span | None = None  # the words stating the predicate
    editable: bool = False  # the span can take any prepositional/gerund predicate


@dataclass(slots=True)
class Caption:
    text: str
    nps: list[NP]
    rels: list[RelSlot]
    style: str = "human"  # human | attribute | relation | dense
    verb: bool = False  # a verb in it ('sits', 'is flying', 'sitting'): nothing is appended to its end

    def facts(self) -> list[str]:
        out: dict[str, None] = {}
        for np in self.nps:
            out[np.name] = None
            for a, _ in np.atts:
                out[attribute_fact(a, np.name)] = None
        for r in self.rels:
            out[relation_fact(r.pred, self.nps[r.subj].name, self.nps[r.obj].name)] = None
        return list(out)


class _Writer:
    """Appends text while recording the spans of what it writes."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.n = 0
        self.nps: list[NP] = []
        self.rels: list[RelSlot] = []

    def put(self, s: str) -> Span:
        parts = self.parts
        if parts and s and s[0] not in ",.":  # a space, except before punctuation
            parts.append(" ")
            self.n += 1
        start = self.n
        parts.append(s)
        self.n = end = start + len(s)
        return start, end

    def np(self, obj: Obj, atts: list[str]) -> int:
        category = lexicon.attribute_category()
        if len(atts) > 1:
            atts = sorted(atts, key=lambda a: ORDER.get(category.get(a, ""), 4))
        first = atts[0] if atts else obj.name
        counted = bool(atts) and category.get(atts[0]) == "count"
        det = "" if counted else _determiner(obj.name, obj.plural, first)
        start = self.put(det)[0] if det else None
        spans = [(a, self.put(a)) for a in atts]
        plural = (atts[0] != "one") if counted else obj.plural
        head = self.put(lexicon.inflect_like(obj.name, plural))
        self.nps.append(NP(obj.name, plural, head, (start if start is not None else
                                                           (spans[0][1][0] if spans else head[0]), head[1]),
                           spans))
        return len(self.nps) - 1

    def rel(self, subj: Obj, pred: str, obj: Obj, s_atts: list[str], o_atts: list[str]) -> None:
        i = self.np(subj, s_atts)
        span = self.put(lexicon.display_predicate(pred))
        k = self.np(obj, o_atts)
        self.rels.append(RelSlot(pred, i, k, span, editable=True))

    def caption(self, style: str) -> Caption:
        text = "".join(self.parts)
        return Caption(text, self.nps, self.rels, style)


_determiner = lru_cache(maxsize=1 << 16)(lexicon.determiner)  # pure: same words, same determiner


@lru_cache(maxsize=1 << 16)
def describable(a: str) -> bool:
    """An attribute that can stand before a noun ('a red car', not 'a here car')."""
    if a in lexicon.attribute_category():
        return True
    return " " not in a and a not in lexicon.not_prenominal() and not a[:1].isdigit()


class _Graph:
    """What the realisers read of a scene graph, worked out once per image (every style and every
    try reads the same): objects by id, each object's describable attributes, the objects that have
    some, and the relations between two differently named objects."""

    def __init__(self, g: SceneGraph, describable: Callable[[str], bool],
                 predicative: Callable[[str], bool] = lexicon.predicative) -> None:
        self.objects = g.objects
        self.predicative = predicative
        self.ids = ids = g.by_id()
        self.usable: dict[int, list[str]] = {}  # id(obj) -> its describable attributes
        self.with_atts: list[Obj] = []
        for o in g.objects:
            usable = [a for a in o.attributes if describable(a)] if o.attributes else []
            self.usable[id(o)] = usable
            if usable:
                self.with_atts.append(o)
        self.rels = [r for r in g.relations if r.subject in ids and r.object in ids
                     and ids[r.subject].name != ids[r.object].name]

    def pick_atts(self, obj: Obj, rng: random.Random, k: int) -> list[str]:
        usable = self.usable[id(obj)]
        if len(usable) <= k:
            return usable
        return rng.sample(usable, k)


def attribute_caption(g: _Graph, rng: random.Random) -> Caption | None:
    """'a black dog and a white couch.' or 'the dog is black and small.'"""
    with_atts = g.with_atts
    if not with_atts:
        return None
    objs = rng.sample(with_atts, min(2, len(with_atts)))
    if len(objs) == 2 and objs[0].name == objs[1].name:
        objs = objs[:1]
    w = _Writer()
    if len(objs) == 1 and rng.random() < 0.5:
        o = objs[0]
        atts = g.pick_atts(o, rng, 2)
        if not all(g.predicative(a) for a in atts):  # "four people.", not "the people are four."
            w.np(o, atts)
            w.put(".")
            return w.caption("attribute")
        w.put("the")
        head = w.put(lexicon.inflect_like(o.name, o.plural))
        w.put("are" if o.plural else "is")
        spans = []
        for j, a in enumerate(atts):
            if j:
                w.put("and")
            spans.append((a, w.put(a)))
        w.nps.append(NP(o.name, o.plural, head, (0, head[1]), spans, subject_of_verb=True))
    else:
        for j, o in enumerate(objs):
            if j:
                w.put("and")
            w.np(o, g.pick_atts(o, rng, 2 if len(objs) == 1 else 1))
    w.put(".")
    return w.caption("attribute")


def relation_caption(g: _Graph, rng: random.Random) -> Caption | None:
    """'a black dog on a white couch.'"""
    rels = g.rels
    if not rels:
        return None
    r = rng.choice(rels)
    ids = g.ids
    s, o = ids[r.subject], ids[r.object]
    w = _Writer()
    w.rel(s, r.predicate, o, g.pick_atts(s, rng, 1), g.pick_atts(o, rng, 1))
    w.put(".")
    return w.caption("relation")


def dense_caption(g: _Graph, rng: random.Random, max_clauses: int = 3) -> Caption | None:
    """Several facts: 'a man wearing a red hat, a black dog on a couch and green trees.'"""
    ids = g.ids
    rels = list(g.rels)
    rng.shuffle(rels)
    clauses: list = []
    used: set[str] = set()
    names_used: set[str] = set()  # names of the used objects
    for r in rels:
        if len(clauses) >= max_clauses:
            break
        if r.subject in used or r.object in used or ids[r.subject].name in names_used:
            continue
        clauses.append(r)
        used |= {r.subject, r.object}
        names_used |= {ids[r.subject].name, ids[r.object].name}
    rest = [o for o in g.with_atts if o.id not in used and o.name not in names_used]
    rng.shuffle(rest)
    for o in rest:
        if len(clauses) >= max_clauses:
            break
        if o.name in names_used:
            continue
        clauses.append(o)
        names_used.add(o.name)
    if len(clauses) < 2:
        return None
    w = _Writer()
    for j, c in enumerate(clauses):
        if j:
            w.put("and" if j == len(clauses) - 1 else ",")
        if isinstance(c, Obj):
            w.np(c, g.pick_atts(c, rng, 1))
        else:
            w.rel(ids[c.subject], c.predicate, ids[c.object], g.pick_atts(ids[c.subject], rng, 1),
                  g.pick_atts(ids[c.object], rng, 1))
    w.put(".")
    return w.caption("dense")


def object_caption(g: _Graph, rng: random.Random) -> Caption | None:
    """Fallback for graphs with objects only: 'a dog and a couch.'"""
    seen: dict[str, Obj] = {}
    for o in g.objects:
        seen.setdefault(o.name, o)
    objs = list(seen.values())
    if not objs:
        return None
    objs = rng.sample(objs, min(2, len(objs)))
    w = _Writer()
    for j, o in enumerate(objs):
        if j:
            w.put("and")
        w.np(o, [])
    w.put(".")
    return w.caption("object")


STYLES = (attribute_caption, relation_caption, dense_caption)


def pseudo_captions(g: SceneGraph, n: int, rng: random.Random, describable: Callable[[str], bool] = describable,
                    predicative: Callable[[str], bool] = lexicon.predicative) -> list[Caption]:
    """Up to `n` distinct pseudo-captions, cycling through the focus styles; they state only the
    attributes `describable` accepts (by default those that read well before a noun), and put after
    'is' only those `predicative` accepts."""
    out: list[Caption] = []
    if n <= 0 and not g.objects:
        return out
    view = _Graph(g, describable, predicative)
    seen: set[str] = set()
    tries = 0
    while len(out) < n and tries < 4 * n + 3:
        make = STYLES[tries % len(STYLES)]
        tries += 1
        c = make(view, rng)
        if c is not None and c.text not in seen:
            seen.add(c.text)
            out.append(c)
    if not out and g.objects:
        c = object_caption(view, rng)
        if c is not None:
            out.append(c)
    return out


def caption_to_dict(c: Caption) -> dict:
    return {"text": c.text, "style": c.style,
            "nps": [[n.name, n.plural, list(n.head), list(n.span), [[a, list(s)] for a, s in n.atts],
                     n.subject_of_verb, [[list(sp), w] for sp, w in n.agree]] for n in c.nps],
            "rels": [[r.pred, r.subj, r.obj, list(r.span) if r.span else None, r.editable] for r in c.rels],
            "verb": c.verb}


def caption_from_dict(d: dict) -> Caption:
    nps = [NP(n[0], n[1], tuple(n[2]), tuple(n[3]), [(a, tuple(s)) for a, s in n[4]], n[5],
              [(tuple(sp), w) for sp, w in n[6]]) for n in d["nps"]]
    rels = [RelSlot(p, s, o, tuple(sp) if sp else None, e) for p, s, o, sp, e in d["rels"]]
    return Caption(d["text"], nps, rels, d["style"], d["verb"])
