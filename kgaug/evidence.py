"""What an image is known to show: its scene graph (and, for caption sources, its captions' words),
read through the KG's synonym tests. A hard negative is valid only if its new fact does not hold here.

Built once per image and asked a few dozen questions: only the name -> attributes map is made up
front; the relation index is made on the first relation question, and every answer is kept for the
image. The sameness tests themselves are memoised by the KG (they do not depend on the image).
"""

from __future__ import annotations

from collections import defaultdict

from kgaug import lexicon
from kgaug.kg import KG
from kgaug.scene_graph import SceneGraph, parse_fact

_SINGULARS: dict[str, str] = {}  # name -> `lexicon.singular(name)[0]`: a dict read costs less than a call


def _singular(name: str) -> str:
    s = _SINGULARS.get(name)
    if s is None:
        if len(_SINGULARS) >= 1 << 16:
            _SINGULARS.clear()
        s = _SINGULARS[name] = lexicon.singular(name)[0]
    return s


class Evidence:
    def __init__(self, graph: SceneGraph, kg: KG, caption_words: set[str] | None = None) -> None:
        self.kg = kg
        self.graph = graph
        objects: dict[str, set[str]] = {}  # name -> attributes over every object of that name
        for o in graph.objects:
            atts = o.attributes
            name = o.name
            have = objects.get(name)
            if have is None:
                have = objects[name] = set(atts)
            else:
                have.update(atts)
            heads = [_singular(x) for x in o.names]  # every surface name, singular, also names the object,
            if " " in name:  # and so does the head noun of a compound ('office chair' is a chair)
                heads.append(name.rsplit(" ", 1)[1])
            for n in heads:
                if n != name:
                    other = objects.get(n)
                    if other is None:
                        objects[n] = set(atts)
                    else:
                        other.update(atts)
        self.objects = objects
        self.words = caption_words or set()
        self._names: set[str] | None = None  # set(objects), made on first use
        self._relations: set[tuple[str, str, str]] | None = None
        self._rels_of: dict[str, list[tuple[str, str, str]]] | None = None
        self._same: dict[str, set[str]] = {}
        self._att_ok: dict[tuple[str, str], bool] = {}
        self._holds: dict[str, bool] = {}
        self._person: bool | None = None
        self._every: dict[str, frozenset[str]] = {}
        self._values: dict[str, frozenset[str] | None] = {}

    @property
    def relations(self) -> set[tuple[str, str, str]]:
        """(predicate, subject name, object name) of every relation of the graph."""
        if self._relations is None:
            ids = {o.id: o.name for o in self.graph.objects}
            self._relations = {(r.predicate, ids[r.subject], ids[r.object]) for r in self.graph.relations
                               if r.subject in ids and r.object in ids}
        return self._relations

    def _relations_by_name(self) -> dict[str, list[tuple[str, str, str]]]:
        """`relations` by subject and by object name (a relation may be listed twice: read as a set)."""
        if self._rels_of is None:
            ids = {o.id: o.name for o in self.graph.objects}
            by_name: defaultdict[str, list[tuple[str, str, str]]] = defaultdict(list)
            for r in self.graph.relations:
                s, o = ids.get(r.subject), ids.get(r.object)
                if s is None or o is None:
                    continue
                t = (r.predicate, s, o)
                by_name[s].append(t)
                if o != s:
                    by_name[o].append(t)
            self._rels_of = by_name
        return self._rels_of

    def _matching(self, name: str) -> set[str]:
        """`matching_objects` as a set (what the tests below read), kept per image."""
        found = self._same.get(name)
        if found is None:
            names = self._names
            if names is None:
                names = self._names = set(self.objects)
                self.kg.meet(names)  # once per image, not per question
            found = self._same[name] = self.kg.same_objects(name, names, met=True)
        return found

    def matching_objects(self, name: str) -> tuple[str, ...]:
        """Names in the graph that `name` could refer to (itself, synonyms, kinds of, kinds it is),
        sorted: those `n` with `kg.same_object(name, n)`."""
        return tuple(sorted(self._matching(name)))

    def categories_of_every(self, name: str) -> frozenset[str]:
        """Attribute categories every object of this name (or surface name) in the graph carries: where
        two bags are listed, one white and one of no colour, the colour of 'a bag' is not known."""
        got = self._every.get(name)
        if got is None:
            category = lexicon.attribute_category()
            common: set[str] | None = None
            for o in self.graph.objects:
                if o.name != name and name not in {_singular(x) for x in o.names} and not o.name.endswith(" " + name):
                    continue
                cats = {category[a] for a in o.attributes if a in category}
                common = cats if common is None else common & cats
            got = self._every[name] = frozenset(common or ())
        return got

    def category_values(self, name: str, cat: str) -> frozenset[str] | None:
        """The attributes of category `cat` on the graph's objects that `name` may refer to (itself, a
        synonym, a kind of it: `matching_objects`), or None where one of them has none: a VG image that
        lists a brown pillow and two pillows of no colour does not show 'the pillow' is not white."""
        key = f"{cat}\t{name}"
        if key in self._values:
            return self._values[key]
        category = lexicon.attribute_category()
        names = self._matching(name) | {name}
        found: set[str] = set()
        out: frozenset[str] | None = None
        for o in self.graph.objects:
            if o.name not in names and not names & {_singular(x) for x in o.names}:
                continue
            got = {a for a in o.attributes if category.get(a) == cat}
            if not got:
                break
            found |= got
        else:
            out = frozenset(found) if found else None
        self._values[key] = out
        return out

    def attribute_nearby(self, att: str, name: str) -> bool:
        """Does the graph give `att` to an object related to one `name` may refer to ('a white bus with
        green stripes')? Such a colour may be on the object itself in the photo, so 'a green bus' is not
        shown false."""
        rels = self._relations_by_name()
        objects = self.objects
        for n in self._matching(name) | {name}:
            for _p, s, o in rels.get(n, ()):
                other = o if s == n else s
                if other != n and att in objects.get(other, ()):
                    return True
        return False

    def has_object(self, name: str) -> bool:
        if self._matching(name):
            return True
        words = self.words
        return bool(words) and (name in words or lexicon.plural(name) in words)

    def has_attribute(self, att: str, name: str) -> bool:
        ok = self._att_ok.get((att, name))
        if ok is None:
            objects = self.objects
            ok = self.kg.same_attribute_any(att, [objects[n] for n in self._matching(name)])
            self._att_ok[att, name] = ok
        return ok

    def has_relation(self, pred: str, subj: str, obj: str) -> bool:
        ss, oo = self._matching(subj), self._matching(obj)
        if not ss or not oo:
            return False
        sym = pred in lexicon.relation_words("symmetric")
        ants = lexicon.relation_antonyms().get(pred, ())
        same = self.kg.same_predicate
        place = self.kg.same_place
        rels_of = self._relations_by_name()
        for n in ss:  # relations naming a match of `subj`, either way round (some come twice: same answer)
            for p, s, o in rels_of.get(n, ()):
                forward = s in ss and o in oo
                backward = s in oo and o in ss
                if forward and (same(pred, p) or place(pred, p, o)):
                    return True
                if backward:
                    if sym and same(pred, p):
                        return True
                    for a in ants:
                        if same(a, p):
                            return True
        return False

    def holds(self, fact: str) -> bool:
        ok = self._holds.get(fact)
        if ok is None:
            head, args = parse_fact(fact)
            if not head:
                ok = self.has_object(args[0])
            elif len(args) == 1:
                ok = self.has_attribute(head, args[0])
            else:
                ok = self.has_relation(head, args[0], args[1])
            self._holds[fact] = ok
        return ok

    def has_person(self) -> bool:
        """Some object of the image is a person or a group of people (then another person added to
        the caption may well be one of them: 'a group of women ... and people')."""
        found = self._person
        if found is None:
            found = self._person = any(self.kg.is_person(n) for n in self.objects)
        return found

    def stated_word(self, word: str) -> bool:
        """For caption sources: another caption of the image uses this word (may make it true)."""
        return bool(self.words) and (word in self.words or lexicon.plural(word) in self.words)
