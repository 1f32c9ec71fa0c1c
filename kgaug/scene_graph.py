"""The one scene-graph type every source normalises into, and the canonical fact strings.

Facts are readable strings used everywhere (pseudo_captions.facts, hard_negatives.fact):
an object `dog`, an attribute `black(dog)`, a relation `on(dog,couch)`. Names are cleaned
(`lexicon.clean`) and singular, so they never contain the reserved characters ( ) ,
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from kgaug import lexicon


# slots: pass 2 makes every object and relation of every image (from the spill); slotted ones are
# about a quarter cheaper to make and no slower to read. PackedGraph fills its attributes on first read
# (`__getattr__`).
@dataclass(slots=True)
class Obj:
    id: str
    name: str  # canonical: cleaned, singular
    plural: bool = False
    names: list[str] = field(default_factory=list)  # every cleaned surface name
    synsets: list[str] = field(default_factory=list)
    attributes: list[str] = field(default_factory=list)
    box: tuple[int, int, int, int] | None = None  # x, y, w, h


@dataclass(slots=True)
class Rel:
    subject: str  # object id
    predicate: str  # canonical predicate
    object: str
    synsets: list[str] = field(default_factory=list)


_OBJ_FIELDS = operator.attrgetter("id", "name", "plural", "names", "synsets", "attributes", "box")  # Obj(*t) order
# An object in the `to_tuples` form (what pass 1 counts and spills): its fields by position.
O_ID, O_NAME, O_PLURAL, O_NAMES, O_SYNSETS, O_ATTRIBUTES, O_BOX = range(7)
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
        return packed_json(*self.to_tuples())

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


def packed_json(objects: tuple, relations: tuple) -> str:
    """`SceneGraph.to_json` of a graph in its `to_tuples` form (pass 2 has that form from the spill):
    {"objects": [{"id", "name", and only what is not a default}, ...], "relations": [[s, p, o], ...]}."""
    objs = []
    for oid, name, plural, names, synsets, attributes, box in objects:
        d: dict = {"id": oid, "name": name}
        if plural:
            d["plural"] = True
        if names and names != [name]:
            d["names"] = names
        if synsets:
            d["synsets"] = synsets
        if attributes:
            d["attributes"] = attributes
        if box is not None:
            d["box"] = box  # a tuple: written as a JSON array, as a list is
        objs.append(d)
    return compact_json({"objects": objs, "relations": relations})  # (s, p, o) tuples: arrays too


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


# Pass 1 normalises every object name, attribute and predicate of the corpus, and VG repeats the same
# few thousand raw strings endlessly: the answers (pure functions of the string) are kept in plain
# dicts, cheaper to ask than the lexicon's lru caches. Bounded: past MEMO_SIZE entries a memo starts afresh.
MEMO_SIZE: Final = 1 << 17
_NAME_FORMS: Final[dict[str, tuple[str, str, bool]]] = {}  # raw name -> (cleaned, singular, was plural)
_CLEANED: Final[dict[str, str]] = {}  # raw attribute -> cleaned
_PREDICATES: Final[dict[str, str]] = {}  # raw predicate -> canonical ('' when meaningless)


_ARTICLE_PREFIXES: Final = ("a ", "an ", "the ")
_PHRASE_WORDS: Final = frozenset(("is", "are", "was", "were", "has", "have", "see"))


def _forms(raw: str) -> tuple[str, str, bool]:
    """(cleaned, singular, was plural); ('', reason, False) for a name that cannot be used: empty, or
    a sentence VG annotators typed as a name ('monitor is off.', 'man has glasses.')."""
    cleaned: str = lexicon.clean(raw)
    if cleaned.startswith(_ARTICLE_PREFIXES):  # 'an outlet' (else 'an an outlet')
        cleaned = cleaned.split(" ", 1)[1]
    if not cleaned:
        return "", "", False
    if " " in cleaned and not _PHRASE_WORDS.isdisjoint(cleaned.split(" ")):
        return "", "object name is a sentence, not a name", False
    name, plural = lexicon.singular(cleaned)
    return cleaned, name, plural


def _remember(memo: dict, raw: str, x):
    """Keep `x` as `memo`'s answer for `raw` (the memo starts afresh past MEMO_SIZE answers); returns `x`.
    Each memoised function below asks its memo inline (one dict look-up when the answer is known) and
    calls this only to remember a new answer."""
    if len(memo) >= MEMO_SIZE:
        memo.clear()
    memo[raw] = x
    return x


def _name_forms(raw: str) -> tuple[str, str, bool]:
    """(cleaned, singular, was plural) of a raw object name ('' cleaned: no usable name), memoised."""
    x = _NAME_FORMS.get(raw)
    return x if x is not None else _remember(_NAME_FORMS, raw, _forms(raw))


def _cleaned(raw: str) -> str:
    """`lexicon.clean`, memoised."""
    x = _CLEANED.get(raw)
    return x if x is not None else _remember(_CLEANED, raw, lexicon.clean(raw))


def _predicate(raw: str) -> str:
    """`lexicon.predicate`, memoised."""
    x = _PREDICATES.get(raw)
    return x if x is not None else _remember(_PREDICATES, raw, lexicon.predicate(raw))


def _strings(xs: Any) -> list[str]:
    """A new list of the strings among `xs` (VG's synsets lists: usually one string)."""
    if type(xs) is list and len(xs) == 1 and type(xs[0]) is str:
        return [xs[0]]  # the usual case, without building a comprehension
    return [s for s in xs if isinstance(s, str)] if xs else []


class PackedGraph(SceneGraph):
    """A SceneGraph held in its `to_tuples` form, as GraphBuilder makes it: pass 1 counts and spills that
    form as is, so the Obj and Rel objects (most of the cost of building a graph) are only made if
    `objects` or `relations` is read, once (objects a builder adds after that are not seen). Equal to the
    SceneGraph with the same objects and relations."""

    def __init__(self, objects: list[tuple], relations: list[tuple[str, str, str]], rel_synsets: list) -> None:
        # No SceneGraph.__init__: `objects` and `relations` are made on first read (`__getattr__`).
        self.packed_objects = objects  # Obj fields in Obj(*t) order, as `to_tuples` gives them
        self.packed_relations = relations  # (subject, predicate, object)
        self._rel_synsets = rel_synsets  # each relation's synsets (not in the `to_tuples` form), unfiltered

    def __getattr__(self, name: str):
        if name == "objects":
            self.objects = [Obj(*t) for t in self.packed_objects]
            return self.objects
        if name == "relations":
            self.relations = [Rel(s, p, o, _strings(syn))
                              for (s, p, o), syn in zip(self.packed_relations, self._rel_synsets, strict=True)]
            return self.relations
        raise AttributeError(name)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SceneGraph):
            return NotImplemented
        return (self.objects, self.relations) == (other.objects, other.relations)

    __hash__ = None  # type: ignore[assignment]  # as SceneGraph's

    def to_tuples(self) -> tuple:
        if "objects" in self.__dict__ or "relations" in self.__dict__:  # made, perhaps changed since
            return SceneGraph.to_tuples(self)
        return tuple(self.packed_objects), tuple(self.packed_relations)


class GraphBuilder:
    """Builds a SceneGraph while dropping (and naming) what cannot be kept. Objects are kept as the tuples
    of `to_tuples` (id, name, plural, names, synsets, attributes, box) and the graph is a PackedGraph.
    Source records are untrusted: names, synsets, attributes and predicates are typed `Any` and what is
    not a string is dropped here."""

    def __init__(self) -> None:
        self._objects: list[tuple] = []
        self._relations: list[tuple[str, str, str]] = []
        self._rel_synsets: list = []
        self.graph: SceneGraph = PackedGraph(self._objects, self._relations, self._rel_synsets)
        self.ids: dict[str, tuple] = {}  # object id -> packed object (read by readers: `oid in b.ids`)
        self._rels: set[tuple[str, str, str]] = set()
        self.problems: list[str] = []

    def add_object(self, oid: str, names: list, synsets: Any = None, attributes: Any = None,
                   box: Any = None) -> tuple | None:
        """Add an object (or more attributes to the one of this id); its packed tuple, None if dropped."""
        obj = self.ids.get(oid)
        if obj is not None:
            if attributes:
                self.add_attributes(oid, attributes)
            return obj
        name: str
        plural: bool
        if len(names) == 1:  # the usual case: one surface name
            x = names[0]
            first = ""
            if isinstance(x, str):
                forms = _NAME_FORMS.get(x)
                first, name, plural = forms if forms is not None else _name_forms(x)
            if not first:
                self.problems.append(name if isinstance(x, str) and name else "object with empty names")
                return None
            cleaned = [first]
        else:
            cleaned = []
            for x in names:
                if isinstance(x, str):
                    c = _name_forms(x)[0]
                    if c and c not in cleaned:
                        cleaned.append(c)
            if not cleaned:
                self.problems.append("object with empty names")
                return None
            name, plural = lexicon.singular(cleaned[0])
        kept: list[str]
        if not synsets:
            kept = []
        elif type(synsets) is list and len(synsets) == 1 and type(synsets[0]) is str:
            kept = [synsets[0]]  # VG's usual one synset: `_strings` without its work
        else:
            kept = _strings(synsets)
        have: list[str] = []
        # One object, shared by `ids` and the graph.
        packed: tuple = (oid, name, plural, cleaned, kept, have, box)
        self.ids[oid] = packed
        self._objects.append(packed)
        if attributes:
            self._attributes(have, name, attributes)
        return packed

    def add_attributes(self, oid: str, attributes: Any) -> None:
        obj = self.ids.get(oid)
        if obj is None:
            self.problems.append("attribute for unknown object id")
            return
        self._attributes(obj[O_ATTRIBUTES], obj[O_NAME], attributes)

    @staticmethod
    def _attributes(have: list[str], name: str, attributes: Any) -> None:
        """Add the cleaned attributes to an object's `have`: new ones, not its own name."""
        for a in attributes:
            if isinstance(a, str):
                c = _CLEANED.get(a)
                if c is None:
                    c = _cleaned(a)
                if c and c not in have and c != name and (" " not in name or c not in name.split(" ")):
                    have.append(c)  # (not 'white' of a 'white board': 'a white white board')

    def has(self, oid: str) -> bool:
        return oid in self.ids

    def add_relation(self, subj: str, pred: Any, obj: str, synsets: Any = None) -> bool:
        ids = self.ids
        if subj not in ids or obj not in ids:
            self.problems.append("relation to unknown object id")
            return False
        p = ""
        if isinstance(pred, str):
            known = _PREDICATES.get(pred)
            p = known if known is not None else _predicate(pred)
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
        if type(synsets) is not list:  # a list is kept as given: filtered if the Rel is ever made (`PackedGraph`)
            synsets = _strings(synsets) if synsets else []
        self._relations.append(key)
        self._rel_synsets.append(synsets)
        return True
