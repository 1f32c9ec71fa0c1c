"""The one scene-graph type every source normalises into, and the canonical fact strings.

Facts are readable strings used everywhere (pseudo_captions.facts, hard_negatives.fact):
an object `dog`, an attribute `black(dog)`, a relation `on(dog,couch)`. Names are cleaned
(`lexicon.clean`) and singular, so they never contain the reserved characters ( ) ,
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field

import orjson

from kgaug import lexicon


@dataclass
class Obj:
    id: str
    name: str  # canonical: cleaned, singular
    plural: bool = False
    names: list[str] = field(default_factory=list)  # every cleaned surface name
    synsets: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    box: tuple[int, int, int, int] | None = None  # x, y, w, h


@dataclass
class Rel:
    subject: str  # object id
    predicate: str  # canonical predicate
    object: str
    synsets: list[str] = field(default_factory=list)


_OBJ_FIELDS = operator.attrgetter("id", "name", "plural", "names", "synsets", "attributes", "box")  # Obj(*t) order
_REL_FIELDS = operator.attrgetter("subject", "predicate", "object")


@dataclass
class SceneGraph:
    objects: list[Obj] = field(default_factory=list)
    relations: list[Rel] = field(default_factory=list)

    def by_id(self) -> dict[str, Obj]:
        return {o.id: o for o in self.objects}

    def facts(self) -> set[str]:
        ids = self.by_id()
        out = {o.name for o in self.objects}
        out |= {attribute_fact(a, o.name) for o in self.objects for a in o.attributes}
        out |= {relation_fact(r.predicate, ids[r.subject].name, ids[r.object].name) for r in self.relations
                if r.subject in ids and r.object in ids}
        return out

    def to_json(self) -> str:
        objs = []
        for o in self.objects:
            d: dict = {"id": o.id, "name": o.name}
            if o.plural:
                d["plural"] = True
            if o.names and o.names != [o.name]:
                d["names"] = o.names
            if o.synsets:
                d["synsets"] = o.synsets
            if o.attributes:
                d["attributes"] = o.attributes
            if o.box is not None:
                d["box"] = list(o.box)
            objs.append(d)
        rels = [[r.subject, r.predicate, r.object] for r in self.relations]
        return compact_json({"objects": objs, "relations": rels})

    def to_tuples(self) -> tuple:
        """A compact picklable form (cheaper than JSON to write and read back between the passes)."""
        return tuple(map(_OBJ_FIELDS, self.objects)), tuple(map(_REL_FIELDS, self.relations))

    @classmethod
    def from_tuples(cls, data: tuple) -> SceneGraph:
        objs, rels = data
        return cls([Obj(*t) for t in objs], [Rel(*t) for t in rels])

    @classmethod
    def from_json(cls, text: str) -> SceneGraph:
        d = json.loads(text)
        objs = [Obj(o["id"], o["name"], o.get("plural", False), o.get("names") or [o["name"]], o.get("synsets", []),
                    o.get("attributes", []), tuple(o["box"]) if o.get("box") else None) for o in d["objects"]]
        return cls(objs, [Rel(s, p, o) for s, p, o in d["relations"]])


def compact_json(value) -> str:
    """`json.dumps(value, separators=(",", ":"), ensure_ascii=False)`, byte for byte (checked on every
    code point), by orjson: about 8x faster, and pass 2 writes one scene graph per image. A string
    orjson refuses (a lone surrogate, which a JSON source can hold as an escape) falls back to json."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def attribute_fact(att: str, obj: str) -> str:
    return f"{att}({obj})"


def relation_fact(pred: str, subj: str, obj: str) -> str:
    return f"{pred}({subj},{obj})"


def parse_fact(fact: str) -> tuple[str, tuple[str, ...]]:
    """`on(dog,couch)` -> ('on', ('dog', 'couch')); `black(dog)` -> ('black', ('dog',)); `dog` -> ('', ('dog',))."""
    if not fact.endswith(")") or "(" not in fact:
        return "", (fact,)
    head, _, args = fact[:-1].partition("(")
    return head, tuple(args.split(","))


def object_name(raw: str) -> tuple[str, bool]:
    """Cleaned singular name and whether the surface form was plural."""
    return lexicon.singular(lexicon.clean(raw))


class GraphBuilder:
    """Builds a SceneGraph while dropping (and naming) what cannot be kept."""

    def __init__(self) -> None:
        self.graph = SceneGraph()
        self.ids: dict[str, Obj] = {}  # object id -> object (read by readers: `oid in b.ids`)
        self._rels: set[tuple[str, str, str]] = set()
        self.problems: list[str] = []

    def add_object(self, oid: str, names: list[str], synsets: list[str] | None = None,
                   attributes: list[str] | None = None, box=None) -> Obj | None:
        obj = self.ids.get(oid)
        if obj is not None:
            if attributes:
                self.add_attributes(oid, attributes)
            return obj
        clean = lexicon.clean
        if len(names) == 1:  # the usual case: one surface name
            x = names[0]
            x = clean(x) if isinstance(x, str) else ""
            cleaned = [x] if x else []
        else:
            cleaned = []
            for x in names:
                if isinstance(x, str):
                    x = clean(x)
                    if x and x not in cleaned:
                        cleaned.append(x)
        if not cleaned:
            self.problems.append("object with empty names")
            return None
        name, plural = lexicon.singular(cleaned[0])
        obj = Obj(oid, name, plural, cleaned, [s for s in synsets if isinstance(s, str)] if synsets else [], [], box)
        self.ids[oid] = obj
        self.graph.objects.append(obj)
        if attributes:
            self._attributes(obj, attributes)
        return obj

    def add_attributes(self, oid: str, attributes: list[str]) -> None:
        obj = self.ids.get(oid)
        if obj is None:
            self.problems.append("attribute for unknown object id")
            return
        self._attributes(obj, attributes)

    @staticmethod
    def _attributes(obj: Obj, attributes: list[str]) -> None:
        clean = lexicon.clean
        have, name = obj.attributes, obj.name
        for a in attributes:
            a = clean(a) if isinstance(a, str) else ""
            if a and a not in have and a != name:
                have.append(a)

    def has(self, oid: str) -> bool:
        return oid in self.ids

    def add_relation(self, subj: str, pred: str, obj: str, synsets: list[str] | None = None) -> bool:
        ids = self.ids
        if subj not in ids or obj not in ids:
            self.problems.append("relation to unknown object id")
            return False
        p = lexicon.predicate(pred) if isinstance(pred, str) else ""
        if not p:
            self.problems.append("empty or meaningless predicate")
            return False
        if subj == obj:
            self.problems.append("relation of an object to itself")
            return False
        key = (subj, p, obj)
        if key in self._rels:  # VG repeats some relationships verbatim
            return True
        self._rels.add(key)
        self.graph.relations.append(Rel(subj, p, obj, [s for s in synsets if isinstance(s, str)] if synsets else []))
        return True
