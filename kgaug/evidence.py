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
        singular = lexicon.singular
        objects: dict[str, set[str]] = {}  # name -> attributes over every object of that name
        for o in graph.objects:
            atts = o.attributes
            for n in (o.name, *(singular(x)[0] for x in o.names)):
                have = objects.get(n)
                if have is None:
                    objects[n] = set(atts)
                else:
                    have.update(atts)
        self.objects = objects
        ids = graph.by_id()
        self.relations = {(r.predicate, ids[r.subject].name, ids[r.object].name) for r in graph.relations
                          if r.subject in ids and r.object in ids}
        self.words = caption_words or set()
        self._rels_of: dict[str, list[tuple[str, str, str]]] = {}  # by subject and by object name
        for t in self.relations:
            self._rels_of.setdefault(t[1], []).append(t)
            if t[2] != t[1]:
                self._rels_of.setdefault(t[2], []).append(t)
        # One reverse index of the (few) identity keys and own senses (tagged) of the graph's names;
        # ancestors are checked per query.
        index: dict = {}
        self._ancestors = [(n, kg._object_keys(n)[2]) for n in objects]
        for n in objects:
            for k in kg.object_index(n):
                names = index.get(k)
                if names is None:
                    index[k] = [n]
                else:
                    names.append(n)
        self._index = index
        self._same: dict[str, tuple[str, ...]] = {}
        self._att_ok: dict[tuple[str, str], bool] = {}

    def matching_objects(self, name: str) -> tuple[str, ...]:
        """Names in the graph that `name` could refer to (itself, synonyms, kinds of, kinds it is)."""
        found = self._same.get(name)
        if found is None:
            keys, top, anc = self.kg._object_keys(name)
            index = self._index
            hits: set[str] = set()
            for k in keys:
                hits.update(index.get(k, ()))
            for a in anc:  # a graph object is a kind of what `name` names
                hits.update(index.get(("sense", a), ()))
            if top:  # `name` names a kind of a graph object
                hits.update([n for n, anc_n in self._ancestors if not top.isdisjoint(anc_n)])
            if self.kg.conceptnet_rows:
                hits.update(n for n in self.objects if n not in hits and self.kg.same_object(name, n))
            found = self._same[name] = tuple(sorted(hits))
        return found

    def has_object(self, name: str) -> bool:
        return bool(self.matching_objects(name)) or name in self.words or lexicon.plural(name) in self.words

    def has_attribute(self, att: str, name: str) -> bool:
        ok = self._att_ok.get((att, name))
        if ok is None:
            keys = self.kg.attribute_keys(att)
            same = self.kg.same_attribute
            ok = any(a == att or ("n", a) in keys or same(att, a)
                     for n in self.matching_objects(name) for a in self.objects[n])
            self._att_ok[att, name] = ok
        return ok

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
