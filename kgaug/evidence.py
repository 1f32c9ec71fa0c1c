"""What an image is known to show: its scene graph (and, for caption sources, its captions' words),
read through the KG's synonym tests. A hard negative is valid only if its new fact does not hold here.
"""

from __future__ import annotations

from kgaug import lexicon
from kgaug.kg import KG
from kgaug.scene_graph import SceneGraph, parse_fact


class Evidence:
    def __init__(self, graph: SceneGraph, kg: KG, caption_words: set[str] | None = None) -> None:
        self.kg = kg
        ids = graph.by_id()
        self.objects: dict[str, set[str]] = {}  # name -> attributes over every object of that name
        for o in graph.objects:
            self.objects.setdefault(o.name, set()).update(o.attributes)
            for n in o.names:
                self.objects.setdefault(lexicon.singular(n)[0], set()).update(o.attributes)
        self.relations = {(r.predicate, ids[r.subject].name, ids[r.object].name) for r in graph.relations
                          if r.subject in ids and r.object in ids}
        self.words = caption_words or set()
        self._rels_of: dict[str, list[tuple[str, str, str]]] = {}  # by subject and by object name
        for t in self.relations:
            self._rels_of.setdefault(t[1], []).append(t)
            if t[2] != t[1]:
                self._rels_of.setdefault(t[2], []).append(t)
        # Reverse indexes of the (few) identity keys and senses; ancestors are checked per query.
        self._by_key: dict = {}
        self._by_sense: dict = {}
        self._keys = {n: kg._object_keys(n) for n in self.objects}
        for n, (keys, top, _anc) in self._keys.items():
            for k in keys:
                self._by_key.setdefault(k, set()).add(n)
            for t in top:
                self._by_sense.setdefault(t, set()).add(n)
        self._same: dict[str, tuple[str, ...]] = {}

    def matching_objects(self, name: str) -> tuple[str, ...]:
        """Names in the graph that `name` could refer to (itself, synonyms, kinds of, kinds it is)."""
        if name not in self._same:
            keys, top, anc = self.kg._object_keys(name)
            found: set[str] = set()
            for k in keys:
                found |= self._by_key.get(k, set())
            for a in anc:  # a graph object is a kind of what `name` names
                found |= self._by_sense.get(a, set())
            if top:  # `name` names a kind of a graph object
                found |= {n for n, (_k, _t, a) in self._keys.items() if n not in found and top & a}
            if self.kg.conceptnet_rows:
                found |= {n for n in self.objects if n not in found and self.kg.same_object(name, n)}
            self._same[name] = tuple(sorted(found))
        return self._same[name]

    def has_object(self, name: str) -> bool:
        return bool(self.matching_objects(name)) or name in self.words or lexicon.plural(name) in self.words

    def has_attribute(self, att: str, name: str) -> bool:
        keys = self.kg.attribute_keys(att)
        for n in self.matching_objects(name):
            for a in self.objects[n]:
                if a == att or ("n", a) in keys or self.kg.same_attribute(att, a):
                    return True
        return False

    def has_relation(self, pred: str, subj: str, obj: str) -> bool:
        ss, oo = set(self.matching_objects(subj)), set(self.matching_objects(obj))
        if not ss or not oo:
            return False
        sym = pred in lexicon.symmetric_predicates()
        ants = lexicon.relation_antonyms().get(pred, ())
        near = {t for n in ss for t in self._rels_of.get(n, ())}
        for p, s, o in near:
            forward = s in ss and o in oo
            backward = s in oo and o in ss
            if forward and self.kg.same_predicate(pred, p):
                return True
            if backward and (sym and self.kg.same_predicate(pred, p) or any(self.kg.same_predicate(a, p)
                                                                           for a in ants)):
                return True
        return False

    def holds(self, fact: str) -> bool:
        head, args = parse_fact(fact)
        if not head:
            return self.has_object(args[0])
        if len(args) == 1:
            return self.has_attribute(head, args[0])
        return self.has_relation(head, args[0], args[1])

    def stated_word(self, word: str) -> bool:
        """For caption sources: another caption of the image uses this word (may make it true)."""
        return bool(self.words) and (word in self.words or lexicon.plural(word) in self.words)
