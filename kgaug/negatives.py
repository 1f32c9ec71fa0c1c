"""Hard negatives: one-fact edits of a true caption, checked false for the image and scored by the KG.

Types (SugarCrepe names plus relation reversal): replace_obj, replace_att, replace_rel, swap_obj,
swap_att, add_obj, add_att, reverse_rel. Every negative records `fact` (the true fact edited, or the
fact added), `from` and `to`; `derive_fact(type, fact, from, to)` gives the new, false fact, so a
reader can re-check a negative without this module's internals.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from typing import Final, NamedTuple

from kgaug import fluency, lexicon
from kgaug.captions import NP, ORDER, Caption, Span
from kgaug.evidence import Evidence
from kgaug.kg import KG
from kgaug.scene_graph import attribute_fact, parse_fact, relation_fact
from kgclip.vocab import NEGATIVE_TYPES

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
SOURCE_CAPTION = "source_caption"  # report.json negative_rejections: captions no negative is edited from
TYPES = NEGATIVE_TYPES  # the order they are generated in, the order the shard contract numbers them
CANDIDATES_PER_SLOT = 6
SALIENT_SCAN = 60  # add_obj: how far down an object's co-occurring objects it looks for people and animals


@dataclass(slots=True)
class Negative:
    """One kept negative: its text, the edit (`from_` -> `to` on `fact`), the KG's plausibility and
    the caption it edits; `new_facts` are the false facts it states (checked against the image)."""

    type: str
    text: str
    from_: str
    to: str
    fact: str
    plausibility: float
    caption: str
    new_facts: tuple[str, ...] = ()
    check_word: str | None = None  # for caption sources: must not appear in the image's other captions

    def row(self) -> dict:
        return dict(zip(ROW_FIELDS, self.row_values()))

    def row_values(self) -> tuple[str, str, str, str, str, float, str]:
        """`row()`'s values, in its order (`table.HARD_NEGATIVE`'s)."""
        return (self.type, self.text, self.from_, self.to, self.fact, round(self.plausibility, 4), self.caption)


class Candidate(NamedTuple):
    """A candidate edit of one caption. Most are never kept: the text and the `Negative` are built
    only for those that are. Ordered by plausibility first (a slot's candidates are ranked by it)."""

    plausibility: float
    caption: Caption
    edits: list[tuple[Span, str]]  # (span of the caption, replacement text)
    from_: str
    to: str
    fact: str  # the true fact edited (or, for additions, the fact added)
    new_facts: tuple[str, ...]  # the false facts the edit states
    check_word: str | None  # a word the image's other captions must not state


ROW_FIELDS: Final = ("type", "text", "from", "to", "fact", "plausibility", "caption")


def derive_fact(kind: str, fact: str, frm: str, to: str) -> str:
    """The false fact a negative states, from its record alone."""
    if kind.startswith("add_"):
        return fact
    head, args = parse_fact(fact)
    if kind in ("swap_obj", "reverse_rel"):
        swap = {frm: to, to: frm}
        args = tuple(swap.get(a, a) for a in args)
    elif kind in ("replace_att", "replace_rel", "swap_att"):
        head = to if head == frm else head
    else:  # replace_obj
        args = tuple(to if a == frm else a for a in args)
    if not head:
        return args[0]
    return f"{head}({','.join(args)})"


def apply_edits(text: str, edits: list[tuple[Span, str]]) -> str:
    out = text
    if len(edits) > 1:
        edits = sorted(edits, key=lambda e: e[0][0], reverse=True)
    for (a, b), new in edits:
        old = text[a:b]
        if len(old) > 1 and old.isupper():  # "A BLUE SHIRT" -> "A GREEN SHIRT"
            new = new.upper()
        elif a == b and text[a:a + 2].isupper():
            new = new.upper()
        out = out[:a] + new + out[b:]
    out = lexicon.fix_articles(out)
    if text[:1].isupper():
        out = out[:1].upper() + out[1:]
    return out


def _moved(text: str, span: Span) -> str:
    """Text of a span that moves elsewhere: drop sentence-initial capitalisation."""
    s = text[span[0]:span[1]]
    if span[0] == 0 and len(s) > 1 and not s[1].isupper():
        s = s[:1].lower() + s[1:]
    return s


def _insertion_point(np: NP, cat: str, kg: KG) -> int:
    """Where a new attribute goes in front of the noun: before the first one it should precede
    ("a small red car", "a red wooden car"); compounds ("skate park") stay next to the head."""
    new = ORDER.get(cat, 4)
    quantity = lexicon.not_predicative()  # "several", "many", "other": they stay in front, as counts do
    for a, (s, _e) in np.atts:
        if s < np.head[0] and a not in quantity and ORDER.get(kg.attribute_category(a) or "", 99) > new:
            return s
    before = [s for a, (s, _e) in np.atts if s < np.head[0] and kg.attribute_category(a) is None
              and a not in quantity]
    return min(before) if before else np.head[0]


class Generator:
    def __init__(self, kg: KG, per_type: int, complete_graphs: bool = False) -> None:
        self.kg = kg
        self.per_type = per_type
        # Does each image's graph list everything in the picture (the synthetic world)? Then an object
        # or attribute the graph lacks is absent, and additions need no other evidence of it.
        self.complete_graphs = complete_graphs
        self.rejected: Counter = Counter()  # (type, reason) -> n
        self._ev: Evidence | None = None  # the image `for_image` is working on
        self._rng: random.Random | None = None  # its seeded draws
        # Adversarial refinement (kgaug/fluency.py): the corpus's two LMs (one per half of the images,
        # `generate.fold`), the one scoring this image and, per type, (the side its negatives lean to,
        # the probability one of that side is kept); empty = off.
        self.lms: tuple[fluency.BigramLM, ...] = ()
        self.lm: fluency.BigramLM | None = None
        self.refine: dict[str, tuple[int, float]] = {}

    def _reject(self, kind: str, reason: str) -> None:
        self.rejected[kind, reason] += 1

    def _ok(self, kind: str, ev: Evidence, new_facts: tuple[str, ...], to_word: str | None) -> bool:
        for f in new_facts:
            if ev.holds(f):
                self._reject(kind, "true in the image's graph")
                return False
        if to_word is not None and ev.stated_word(to_word):
            self._reject(kind, "stated by another caption of the image")
            return False
        return True

    # -- the eight edits --------------------------------------------------------------------------
    # Each type lists its slots (what in which caption can be edited: cheap, no KG scoring) with
    # `<type>_slots`, and `<type>(*slot)` expands one slot into its candidate tuples (a handful of
    # replacement words, scored). `for_image` expands slots lazily, in seeded order, and stops as
    # soon as enough valid negatives are found, so most slots are never scored or validated.
    def _categories(self) -> frozenset[str]:
        """The categories replace_att and swap_att edit: not sizes, unless every graph is complete."""
        cats = lexicon.replaceable_categories()  # not 'other' -> 'same', not a count or a pose
        return cats if self.complete_graphs else cats - lexicon.subjective_categories()

    def replace_att_slots(self, c: Caption) -> list[tuple]:
        kg = self.kg
        category = lexicon.attribute_category()
        replaceable = self._categories()
        out = []
        for np in c.nps:
            if not np.atts:
                continue
            for a, span in np.atts:
                cat = category.get(a)
                if cat in replaceable and kg.editable_category(np.name, cat) and kg.attribute_candidates(a, 1):
                    if self.complete_graphs or (kg.depicted_kind(np.name) and _modifies_noun(c.text, np, span)):
                        out.append((c, np, a, span))
                    else:  # 'a large amount', 'an old fashioned island'
                        self._reject("replace_att", "not an attribute of a thing a photo shows")
        return out

    def replace_att(self, c: Caption, np: NP, a: str, span: Span) -> list[Candidate]:
        kg = self.kg
        name = np.name
        own = {x for x, _ in np.atts}
        if kg.is_person(name):  # 'a short person' -> 'a tall person', never 'a long person'
            own |= set(lexicon.load("attributes")["not_on_people_words"])
        known: frozenset[str] = frozenset()
        if not self.complete_graphs and self._ev is not None:
            # Every object this name may refer to must have an attribute of the category, and the new
            # one must contradict each: of two pillows, one brown and one of no colour, 'the pillow is
            # white' may be true.
            got = self._ev.category_values(name, lexicon.attribute_category()[a])
            if got is None:
                self._reject("replace_att", "an object of this name whose attribute the image does not give")
                return []
            known = got
        animate = kg.is_animate(name)
        cat = lexicon.attribute_category()[a]
        # nature's colours and things' materials only as the corpus has them on that noun ('white
        # grass', 'black leaves'; 'a brick fork', 'a brick boat')
        attested = not self.complete_graphs and (cat == "material" or kg.natural_kind(name))
        # no colour of a thing related to it ('a green bus' for a white bus with green stripes)
        nearby = self._ev.attribute_nearby if not self.complete_graphs and cat == "colour" and self._ev else None
        fact = attribute_fact(a, name)
        out = []
        for to in kg.attribute_candidates(a, CANDIDATES_PER_SLOT):
            if to in own or not lexicon.fits_animacy(to, animate) or lexicon.named_against(to, name):
                continue  # 'a young monitor', 'an old boy'
            if attested and not kg.shows_attribute(name, to):
                continue
            if nearby is not None and nearby(to, name):
                continue
            if not all(lexicon.contradicts(k, to) for k in known):
                continue
            out.append(Candidate(kg.plausibility_att(name, to), c, [(span, to)], a, to, fact,
                                 (attribute_fact(to, name),), to))
        return out

    def replace_obj_slots(self, c: Caption) -> list[tuple]:
        kg = self.kg
        return [(c, i) for i, np in enumerate(c.nps) if kg.object_candidates(np.name, 1)]

    def replace_obj(self, c: Caption, i: int) -> list[Candidate]:
        out = []
        kg = self.kg
        nps = c.nps
        np = nps[i]
        name, head, form = np.name, np.head, np.plural
        others = [n.name for n in nps]
        atts = [a for a, _ in np.atts]
        rels = [(r.pred, nps[r.obj].name, True) if r.subj == i else (r.pred, nps[r.subj].name, False)
                for r in c.rels if r.subj == i or r.obj == i]
        rest = [n for n in others if n != name]
        singular = lexicon.singular
        # A noun modifier (no attribute category: 'speed' bike, 'tennis' ball) belongs to its noun: it
        # stays only on a new object the corpus shows it on ('a speed street', 'a tennis counter').
        category = lexicon.attribute_category()
        bound = [a for a in atts if a not in category]
        described = [a for a in atts if category.get(a) not in (None, "count")]
        animate, person = kg.is_animate(name), kg.is_person(name)
        salient = lexicon.is_salient(name)
        for to in kg.object_candidates(name, CANDIDATES_PER_SLOT):
            if to in others or singular(to)[1]:
                continue  # a plural-only word ("people") would break the article and verb number
            if not self.complete_graphs and not (salient and lexicon.is_salient(to)):
                self._reject("replace_obj", "a thing for a thing: the captions do not show it absent")
                continue  # 'a black bag' for 'a black purse', 'two forks' on a table with forks
            if lexicon.near_synonym(name, to):
                self._reject("replace_obj", "a near-synonym: one picture may fit both names")
                continue  # 'a crowd' -> 'an audience', 'a bus' -> 'a vehicle'
            if kg.is_animate(to) != animate or not kg.same_kind(name, to) or not kg.depicted_kind(to):
                self._reject("replace_obj", "implausible: another kind of thing (WordNet)")
                continue  # 'a group of tables skiing', 'a food riding skis', 'two cows in a direction'
            if person and not lexicon.person_contrast(name, to):
                self._reject("replace_obj", "a person's name that may name the same one (not a man for a woman)")
                continue  # 'a bride on a wet beach' for a woman, 'owners' for adults, 'pedestrians' for riders
            role = self._new_role(to, rels)
            if role is not None:
                self._reject("replace_obj", role)
                continue  # 'a man in a dirty laptop', 'a monitor wearing a suit'
            if bound and not all(kg.shows_attribute(to, a) for a in bound):
                self._reject("replace_obj", "implausible: a noun modifier the corpus never shows on the new object")
                continue
            if not all(kg.shows_attribute(to, a) for a in described):
                self._reject("replace_obj", "implausible: an attribute the corpus never shows on the new object")
                continue  # 'a yellow case', 'a tall floor', 'the shiny chair'
            if atts or rels:
                scores = [kg.plausibility_att(to, a) for a in atts]
                for pr, other, subj in rels:
                    scores.append(kg.plausibility_rel(to, pr, other) if subj else kg.plausibility_rel(other, pr, to))
                scores.append(kg.plausibility_cooc(to, rest))
                p = sum(scores) / len(scores)
            else:  # the mean of one score is that score, exactly
                p = kg.plausibility_cooc(to, rest)
            out.append(Candidate(p, c, [(head, lexicon.plural(to) if form else to)], name, to, name, (to,), to))
        return out

    def _new_role(self, to: str, rels: list[tuple[str, str, bool]]) -> str | None:
        """Why `to` may not take the relations of the object it replaces, or None: the corpus must
        have it as the subject of each verb (not of a preposition: anything can be on something) and
        as the object of each verb and preposition ('in a laptop', 'a monitor wearing')."""
        kg = self.kg
        for pred, _other, subj in rels:
            if subj and not kg.is_spatial(pred) and not kg.takes_role(to, pred, None):
                return "implausible: the corpus never has the new object do this"
            if not subj and not kg.takes_role(None, pred, to):
                return "implausible: the corpus never has the new object in this relation"
        return None

    def replace_rel_slots(self, c: Caption) -> list[tuple]:
        kg = self.kg
        return [(c, r) for r in c.rels if r.editable and r.span is not None and kg.predicate_candidates(r.pred)]

    def replace_rel(self, c: Caption, r) -> list[Candidate]:
        kg = self.kg
        s, o = c.nps[r.subj].name, c.nps[r.obj].name
        pred, span = r.pred, r.span
        fact = relation_fact(pred, s, o)
        display = lexicon.display_predicate
        postures = lexicon.postures()
        weak, movers = lexicon.relation_words("weak"), lexicon.relation_words("converse_movers")
        single = not (c.nps[r.subj].plural or kg.is_group(s))
        poses = [a for a, _ in c.nps[r.subj].atts if lexicon.attribute_category().get(a) == "pose"]  # 'a sitting man'
        out = []
        cands = kg.predicate_candidates(pred)
        if not self.complete_graphs:
            kept = [to for to in cands if to not in weak]
            if len(kept) < len(cands):  # 'swinging a bat' -> 'holding a bat', 'a train riding' -> 'parked'
                self._reject("replace_rel", "a verb the old one implies or a photo cannot tell")
            cands = kept
        for to in cands[:CANDIDATES_PER_SLOT * 2]:
            posture = to.partition(" ")[0]
            if posture in postures:  # the place is kept: only who can stand, sit or walk
                if not kg.is_animate(s):
                    self._reject("replace_rel", "implausible: a posture for a thing")
                    continue  # 'a bus sitting at a curb' -> 'a bus walking at a curb'
                if not self.complete_graphs and not (single and not poses and lexicon.posture_contrast(
                        lexicon.posture_head(pred.partition(" ")[0]), posture, kg.is_person(s))):
                    self._reject("replace_rel", "a posture a photo may not tell apart (or a group's)")
                    continue  # 'people walking' -> 'people standing', 'a bird standing' -> 'sitting'
            elif kg.is_spatial(to):
                if not kg.grounds(to, o):
                    self._reject("replace_rel", "implausible: nothing is in such a place of this object")
                    continue  # 'a toddler outside a toothbrush', 'a woman standing under the pavement'
                if (to in movers and not self.complete_graphs and not kg.is_animate(s)
                        and not kg.takes_role(s, to, None)):
                    self._reject("replace_rel", "implausible: a thing the corpus never has in such a place")
                    continue  # 'a laptop under the desk', 'roses outside a vase'
            elif not kg.takes_role(s, to, o):
                self._reject("replace_rel", "implausible: the corpus never has these roles for this verb")
                continue  # 'a painting wearing a wall', 'a person riding a tennis ball'
            out.append(Candidate(kg.plausibility_rel(s, to, o), c, [(span, display(to))], pred, to, fact,
                        (relation_fact(to, s, o),), None))
        return out

    def _pairs(self, c: Caption) -> list[tuple]:
        nps = c.nps
        return [(c, i, k) for i, a in enumerate(nps) for k in range(i + 1, len(nps)) if a.name != nps[k].name]

    def swap_att_slots(self, c: Caption) -> list[tuple]:
        return self._pairs(c) if len(c.nps) > 1 and any(n.atts for n in c.nps) else []

    def swap_att(self, c: Caption, i: int, k: int) -> list[Candidate]:
        a, b = c.nps[i], c.nps[k]
        if not a.atts or not b.atts:
            return []
        # The first pair of attributes of one known category, one on each ('a red cube and a blue ball'
        # -> 'a blue cube and a red ball'); never two categories: 'a wood drawer and brown cabinets' ->
        # 'a brown drawer and wood cabinets' may well be true (material and colour do not exclude each
        # other), 'a small kitchen with white cabinets' -> 'a white kitchen with small cabinets' too.
        # Not noun modifiers ('toilet seat'), not counts; allowed on both (no colour on people).
        kg = self.kg
        category = lexicon.attribute_category()
        cats = _swappable() if self.complete_graphs else _swappable() - lexicon.subjective_categories()
        pair = _same_category_pair(a.atts, b.atts, cats)
        if pair is None:
            if _first_categorised(a.atts) is not None and _first_categorised(b.atts) is not None:
                self._reject("swap_att", "attributes of two categories (they need not exclude each other)")
            return []
        xa, yb = pair
        (x, xs), (y, ys) = xa, yb
        if (kg.same_attribute(x, y) or not lexicon.contradicts(x, y) or x in {t for t, _ in b.atts} or y in {t for t, _ in a.atts}
                or not kg.editable_category(a.name, category[y]) or not kg.editable_category(b.name, category[x])):
            return []
        if not (lexicon.fits_animacy(y, kg.is_animate(a.name)) and lexicon.fits_animacy(x, kg.is_animate(b.name))):
            return []
        if not self.complete_graphs and (kg.odd_attribute(a.name, y) or kg.odd_attribute(b.name, x)):
            self._reject("swap_att", "implausible: a moved attribute is not what the corpus has on its new object")
            return []  # 'a blue road' where roads are grey
        new = (attribute_fact(y, a.name), attribute_fact(x, b.name))
        p = min(self.kg.plausibility_att(a.name, y), self.kg.plausibility_att(b.name, x))
        return [Candidate(p, c, [(xs, y), (ys, x)], x, y, attribute_fact(x, a.name), new, None)]

    def swap_obj_slots(self, c: Caption) -> list[tuple]:
        # Without attributes this is reverse_rel; a number change breaks agreement. (`_pairs`, filtered
        # as they are listed.)
        nps = c.nps
        return [(c, i, k) for i, a in enumerate(nps) for k in range(i + 1, len(nps))
                if a.name != nps[k].name and a.plural == nps[k].plural and (a.atts or nps[k].atts)]

    def swap_obj(self, c: Caption, i: int, k: int) -> list[Candidate]:
        a, b = c.nps[i], c.nps[k]
        first, second = (a, b) if a.span[0] < b.span[0] else (b, a)
        if not second.atts and c.text[first.span[1]:second.span[0]].strip(" ,") in ("and", "or", ""):
            self._reject("swap_obj", "two nouns one attribute may describe ('white cabinets and appliances')")
            return []
        new = [attribute_fact(t, b.name) for t, _ in a.atts] + [attribute_fact(t, a.name) for t, _ in b.atts]
        kg = self.kg
        category = lexicon.attribute_category()
        if not (all(kg.editable_category(b.name, category.get(t)) for t, _ in a.atts)
                and all(kg.editable_category(a.name, category.get(t)) for t, _ in b.atts)):
            return []  # an attribute that may not move onto the other object (a colour onto a person)
        if not (all(kg.shows_attribute(b.name, t) for t, _ in a.atts)
                and all(kg.shows_attribute(a.name, t) for t, _ in b.atts)):
            self._reject("swap_obj", "implausible: the corpus never shows a moved attribute on its new object")
            return []  # 'a clean car and a parked road'
        # Every relation of either object changes with the swap, also one with a third object ('a man
        # carrying a backpack' -> 'a man carrying a road'): each new fact is recorded and checked.
        swapped = {i: b.name, k: a.name}
        sym = lexicon.relation_words("symmetric")
        for r in c.rels:
            if r.subj in swapped or r.obj in swapped:
                s = swapped.get(r.subj, c.nps[r.subj].name)
                o = swapped.get(r.obj, c.nps[r.obj].name)
                if not kg.is_spatial(r.pred):
                    if not kg.takes_role(s, r.pred, o):
                        self._reject("swap_obj", "implausible: the corpus never has these roles for this verb")
                        return []
                elif not self.complete_graphs and r.pred not in sym and not kg.reversible(o, r.pred, s):
                    self._reject("swap_obj", "implausible: the corpus does not have the one in such a place of the other")
                    return []  # 'a white kitchen in the refrigerator', 'a table on a telephone'
                new.append(relation_fact(r.pred, s, o))
        fact = attribute_fact(a.atts[0][0], a.name) if a.atts else attribute_fact(b.atts[0][0], b.name)
        scores = [kg.plausibility_att(b.name, t) for t, _ in a.atts]
        scores += [kg.plausibility_att(a.name, t) for t, _ in b.atts]
        edits = [(a.head, c.text[b.head[0]:b.head[1]]), (b.head, c.text[a.head[0]:a.head[1]])]
        return [Candidate(min(scores), c, edits, a.name, b.name, fact, tuple(new), None)]

    def reverse_rel_slots(self, c: Caption) -> list[tuple]:
        out = []
        sym, irreversible = lexicon.relation_words("symmetric"), lexicon.relation_words("irreversible")
        display = lexicon.display_predicate
        for r in c.rels:
            a, b = c.nps[r.subj], c.nps[r.obj]
            if a.name == b.name or r.pred in sym or display(r.pred) in sym or r.pred in irreversible:
                continue  # ('has' reads 'with': 'a bag with a man' says what 'a man with a bag' says)
            if a.plural != b.plural and (a.subject_of_verb or b.subject_of_verb):
                continue
            if a.span[1] <= b.span[0] or b.span[1] <= a.span[0]:
                out.append((c, r))
        return out

    def reverse_rel(self, c: Caption, r) -> list[Candidate]:
        a, b = c.nps[r.subj], c.nps[r.obj]
        if not self.kg.reversible(a.name, r.pred, b.name):  # 'grey sneakers wearing a man', 'a building on a window'
            self._reject("reverse_rel", "implausible: the corpus never has these roles swapped")
            return []
        new = relation_fact(r.pred, b.name, a.name)
        edits = [(a.span, _moved(c.text, b.span)), (b.span, _moved(c.text, a.span))]
        return [Candidate(self.kg.plausibility_rel(b.name, r.pred, a.name), c, edits, a.name, b.name,
                 relation_fact(r.pred, a.name, b.name), (new,), None)]

    def _known_exclusive(self, np: NP) -> set[str]:
        """Exclusive categories (colour, material, ...) the image's graph gives an attribute of on an
        object of this name, other than those the noun phrase states: an added attribute of one of them
        that differs from the known one is false for the image, not merely unstated."""
        ev = self._ev
        known = ev.objects.get(np.name) if ev is not None else None
        if not known:
            return set()
        category = lexicon.attribute_category()
        stated = {category[a] for a, _ in np.atts if a in category}
        if self.complete_graphs:
            return {category[a] for a in known if a in category} & (_exclusive() - stated)
        return set(ev.categories_of_every(np.name)) & (_exclusive() - stated)  # (not 'a white bag' of two bags)

    def add_att_slots(self, c: Caption) -> list[tuple]:
        # Only noun phrases whose object has a known attribute of an exclusive category: 'a cup' whose
        # cup the graph has white -> 'a red cup' contradicts it; 'a white plate' added to a plate of
        # unknown colour may be what the photo shows ('an oval table', 'a black bag'). A complete graph
        # (the synthetic world) knows every attribute, so any object may take one there, known first.
        known = [np for np in c.nps if self._known_exclusive(np)]
        if self.complete_graphs:
            return [(c, np) for np in (known or c.nps)]
        return [(c, np) for np in known]

    def add_att(self, c: Caption, np: NP) -> list[Candidate]:
        out = []
        kg = self.kg
        name = np.name
        category = lexicon.attribute_category()  # (what kg.attribute_category reads)
        cats = {category.get(a) for a, _ in np.atts}
        only = self._known_exclusive(np)
        known = self._ev.objects.get(name, ()) if self._ev is not None else ()
        where: dict[str, int] = {}
        for to, cat in kg.addable_attributes(name):
            if cat in cats or (only and cat not in only):
                continue
            if not all(lexicon.contradicts(k, to) for k in known if category.get(k) == cat):
                continue  # a grey road is not contradicted by 'black', a silver sink by 'grey'
            new = attribute_fact(to, name)
            at = where.get(cat)
            if at is None:
                at = where[cat] = _insertion_point(np, cat, kg)
            out.append(Candidate(kg.plausibility_att(name, to), c, [((at, at), to + " ")], "", to, new, (new,), to))
            if len(out) >= CANDIDATES_PER_SLOT:
                break
        return out

    def add_obj_slots(self, c: Caption) -> list[tuple]:
        if not c.nps:
            return []
        if not self.complete_graphs and c.style == "human":
            # Beside a clause's subject ('The dog and a cat are curious', 'People and a horse are walking'),
            # not after its last noun: '... flying in a blue cloudy sky and a man' reads as in the sky and
            # a man. Appended only to a caption with no verb ('A kitchen with a stove and cabinets').
            first = min(c.nps, key=lambda n: n.span[0])
            if (not c.text[:first.span[0]].strip() and _verb_follows(c.text, first)
                    and (first.plural or first.agree or not first.subject_of_verb)
                    and not (first.agree and _SINGULAR_PRONOUN.search(c.text, first.span[1]))):
                return [(c, first, True)]
        last = max(c.nps, key=lambda n: n.span[1])
        if not self.complete_graphs and c.style == "human" and c.verb and not _ends_a_list(c.text, last):
            return []  # ('... set on a table and a chef', '... connected to a laptop and a cat')
        if c.text[last.span[1]:].strip(" .!,") or last.subject_of_verb:
            return []  # appending must not change what a verb agrees with
        return [(c, last, False)]

    def add_obj(self, c: Caption, at: NP, subject: bool) -> list[Candidate]:
        """'... and a dog', or beside the subject of a clause ('People and a horse are walking on a
        beach'). Unless the graphs are complete, only a person or an animal: captions name the people
        and animals a picture shows, so one no caption names is absent, while an added thing ('a chair'
        in a kitchen, 'a sink', 'a ball' in a playroom) may be out of the captions' view and in the photo.
        And only one the corpus has in such scenes: with every object the caption names, people and
        background aside ('a fox' on a motorcycle in traffic, 'a horse' in a living room, 'a baker' beside
        a bear are not)."""
        names = [n.name for n in c.nps]
        kg = self.kg
        verbs, places, beside = [], [], None
        if subject:  # the added one does what the subject does, where it does it: the corpus must have that
            i = c.nps.index(at)
            verbs = [r.pred for r in c.rels if r.subj == i and not kg.is_spatial(r.pred)]
            if not self.complete_graphs:
                places = [c.nps[r.obj].name for r in c.rels if r.subj == i]
                beside = _joins(kg, at.name, _clause_verb(c.text, at))
                if beside is None:
                    self._reject("add_obj", "a thing's clause: no person or animal does what it does")
                    return []
        out = []
        pool: dict[str, None] = {}
        is_not_object = lexicon.is_not_object
        for n in names:
            seen = kg.cooccurring(n)
            if not self.complete_graphs:
                seen = [to for to in seen[:SALIENT_SCAN] if lexicon.is_salient(to)]
            pool.update(dict.fromkeys(seen[:CANDIDATES_PER_SLOT]))
        # the caption's edit: the added object (and, beside a singular subject, its verbs made plural)
        edits = [((at.span[1], at.span[1]), "")]
        if subject and not at.plural:
            edits += [(span, word) for span, word in at.agree]
        people = self._ev is not None and self._ev.has_person()
        scene = [] if self.complete_graphs else [n for n in dict.fromkeys(names)
                                                 if not lexicon.is_background(n) and not kg.is_person(n)]
        for to in list(pool)[:CANDIDATES_PER_SLOT * 2]:
            if to in names or is_not_object(to):
                continue
            if verbs and not all(kg.takes_role(to, v, None) for v in verbs):
                self._reject("add_obj", "implausible: the corpus never has the added one do what the subject does")
                continue
            if lexicon.is_background(to):
                self._reject("add_obj", "a background noun most pictures show")
                continue
            if kg.likely_present(to, names):
                self._reject("add_obj", "likely in the picture: the corpus has it with most images of a named object")
                continue
            if people and kg.is_person(to):
                self._reject("add_obj", "a person where the image already shows people")
                continue
            if beside is not None and kg.is_person(to) not in beside:
                self._reject("add_obj", "would do what the subject does, which the added one does not")
                continue
            if places and not all(kg.seen_together(to, x) for x in places):
                self._reject("add_obj", "implausible: the corpus never has the added one where the subject is")
                continue
            if scene and not kg.fits_scene(to, scene):
                self._reject("add_obj", "out of place: the corpus does not have it with the caption's objects")
                continue
            p = 0.5 * (kg.plausibility_cooc(to, names) + kg.association(to, names))
            out.append(Candidate(p, c, [(edits[0][0], _and_phrase(to)), *edits[1:]], "", to, to, (to,), to))
        return out

    # -- per image --------------------------------------------------------------------------------
    def for_image(self, captions: list[Caption], ev: Evidence, rng: random.Random) -> list[Negative]:
        """Up to `per_type` negatives of each type. Slots are visited in seeded order, each expanded
        only when reached; a slot gives its most plausible valid edit (ties by the seed) per round, so
        implausible replacements come last, and a second round over the same slots runs only when the
        first did not find enough."""
        out: list[Negative] = []
        self._ev = ev
        self._rng = rng
        human = any(c.style == "human" for c in captions)
        captions = [c for c in captions if self._editable(c)]
        graph_only = not self.complete_graphs and not ev.words
        # A person's caption reads right; a pseudo-caption carries the parse's slips ('a baseball to a
        # batter', 'many food'): a type is edited from pseudo-captions only where no human caption gives one.
        first = [c for c in captions if c.style == "human"] if not self.complete_graphs else captions
        rest = [c for c in captions if c.style != "human"] if not self.complete_graphs else []
        for kind in TYPES:
            if kind == "add_obj" and graph_only:
                self._reject(kind, "no caption of the whole image: an unnamed person or animal may be in it")
                continue  # a VG graph of an empty room does not say no one is there
            list_slots, expand = getattr(self, kind + "_slots"), getattr(self, kind)
            kept: set[str] = set()
            seen_any = False
            # an object added to a pseudo-caption ends a list of the parse's phrases ('two people and a
            # haired person and a horse'): add_obj takes people's captions only, where there are any
            groups = (first,) if kind == "add_obj" and human and not self.complete_graphs else (first, rest)
            for group in groups:
                if kept:
                    break
                slots = [s for c in group for s in list_slots(c)]
                seen_any = self._fill(kind, expand, slots, ev, kept, out) or seen_any
            if not seen_any:
                self._reject(kind, "no candidate edit in this image's captions")
        return out

    def _fill(self, kind: str, expand, slots: list[tuple], ev: Evidence, kept: set[str], out: list[Negative]) -> bool:
        """Expand the slots in seeded order into `out` until `per_type` are kept; True if any slot had a
        candidate. A slot gives its most plausible valid edit (ties by the seed) per round."""
        rng = self._rng
        rand = rng.random
        if len(slots) > 1:  # (shuffling fewer draws nothing from the rng)
            rng.shuffle(slots)
        pools: list[list[Candidate]] = []
        seen_any = False
        for slot in slots:
            ranked = expand(*slot)
            if not ranked:
                continue
            seen_any = True
            # Best last (popped first); ties broken by one draw per candidate, in list order (sort
            # asks each key once, in order). One candidate still takes its draw.
            ranked.sort(key=lambda t: (t.plausibility, rand()))
            if self._take(kind, ranked, ev, kept, out):
                break
            if ranked:
                pools.append(ranked)
        done = len(kept) >= self.per_type
        while pools and not done:  # later rounds: the next best of each slot, same order
            for r in pools:
                if self._take(kind, r, ev, kept, out):
                    done = True
                    break
            pools = [r for r in pools if r]
        return seen_any

    def _editable(self, c: Caption) -> bool:
        """A caption worth editing: every word known to WordNet or a function word (not 'sittingon',
        'one fut', 'a pictuers on the wall'), and no pair of content words said twice ('chair rolls
        office chair rolls'): a negative keeps its caption's flaws, and a reader rejects it for them."""
        stop = _stop_words()
        content = [w for w in _WORD.findall(c.text.lower()) if w not in stop]
        for w in content:
            if not w.isdigit() and not self.kg.knows_word(w):
                self._reject(SOURCE_CAPTION, "a word WordNet does not know (a typo, run-together words)")
                return False
        pairs = list(zip(content, content[1:]))
        if len(set(pairs)) < len(pairs):
            self._reject(SOURCE_CAPTION, "a phrase said twice (garbled text)")
            return False
        return True

    def _take(self, kind: str, ranked: list[Candidate], ev: Evidence, kept: set[str], out: list[Negative]) -> bool:
        """Pop the slot's best valid candidate (the rest stay for a later round) into `out`;
        True when `per_type` negatives are kept."""
        while ranked:
            cand = ranked.pop()
            c = cand.caption
            if not self._ok(kind, ev, cand.new_facts, cand.check_word):
                continue
            text = apply_edits(c.text, cand.edits)
            folded = text.lower()
            if text == c.text or folded in kept:
                continue
            if self.refine and not self._balanced(kind, text, c.text):
                continue
            kept.add(folded)
            out.append(Negative(kind, text, cand.from_, cand.to, cand.fact, cand.plausibility, c.text,
                                cand.new_facts, cand.check_word))
            break
        return len(kept) >= self.per_type


    def _balanced(self, kind: str, text: str, caption: str) -> bool:
        """Keep a negative of the side its type leans to (the text-only LM finds it less, or more,
        likely than its caption) only with the refinement's probability; the rest are kept."""
        rule = self.refine.get(kind)
        lm, rng = self.lm, self._rng
        if rule is None or rule[0] == 0 or rule[1] >= 1.0 or lm is None or rng is None:
            return True  # (no draw: a type kept whole gives the rows of a build without refinement)
        if fluency.side(fluency.gap(lm, text, caption)) != rule[0] or rng.random() < rule[1]:
            return True
        self._reject(kind, fluency.REFINED)
        return False


_FINITE_BE = frozenset({"is", "are", "was", "were"})
# a participle's list, what an added person or animal would be among ('filled with', 'blocked by')
_FILLED = re.compile(r"\b[a-z]+ed (?:with|by)\b", re.IGNORECASE)
# a pronoun that would still speak of the subject alone once an object joins it ('A man pokes his head')
_SINGULAR_PRONOUN = re.compile(r"\b(?:his|her|hers|its|himself|herself|itself|he|she|it)\b", re.IGNORECASE)


def _verb_follows(text: str, np: NP) -> bool:
    """Does a verb come right after the noun phrase ('A man sanding on a boat', 'People are having
    fun', 'A plane is flying'), so that an object put beside it shares the clause, rather than a
    modifier of the noun ('A man in an outfit', 'A bathroom that has a mirror')? A singular subject's
    finite verb counts only where the parse knows its plural (`NP.agree`)."""
    after = text[np.span[1]:np.span[1] + 40].lower()
    words = _WORD.findall(after)
    if not words or not after.startswith(" " + words[0]):
        return False  # (a comma: a list goes on)
    if np.agree:  # (not 'The vanity is a contemporary style': no object shares what the subject is)
        return np.agree[0][0][0] == np.span[1] + 1 and not (
            words[0] in _FINITE_BE and len(words) > 1 and words[1] in ("a", "an", "the", "one"))
    if words[0] in _FINITE_BE:  # (a singular one would have to become 'are')
        return np.plural and words[0] in ("are", "were") and len(words) > 1 and words[1].endswith("ing")
    if words[0] in _stop_words() or lexicon.attribute_category().get(words[0], "pose") != "pose":
        return False
    return np.plural or words[0].endswith("ing")  # ("A man sits": a finite verb would not agree; "A bike parked": a passive)


def _ends_a_list(text: str, np: NP) -> bool:
    """Is the noun phrase the last of a list ('with a fork and knife', 'has two monitors and two
    keyboards') or what 'with' gives ('sitting on the table with headphones')? An object appended there
    joins the list; after any other phrase it joins that phrase's place ('on a plate and a boy')."""
    if _FILLED.search(text, 0, np.span[0]):
        return False  # ('packed with foods and drinks and a man', 'topped with plates and a boy')
    before = _WORD.findall(text[max(0, np.span[0] - 30):np.span[0]].lower())
    return bool(before) and before[-1] in ("with", "and")


def _clause_verb(text: str, np: NP) -> str:
    """The verb right after a subject, past 'is' / 'are' ('A cat is laying' -> 'laying'), lower case."""
    words = _WORD.findall(text[np.span[1]:np.span[1] + 40].lower())
    if len(words) > 1 and words[0] in _FINITE_BE:
        return words[1]
    return words[0] if words else ""


def _joins(kg: KG, subject: str, verb: str) -> tuple[bool, ...] | None:
    """Who may be put beside `subject` to do what it does (`verb`): the person-ness (`KG.is_person`) an
    added one must have. An animal beside an animal ('The dog and a cat are curious'), a person beside a
    person; an animal beside a person only in a posture ('People and a horse are walking on a beach',
    not 'The woman and a dog are reading' or 'A man and an elephant reach into a truck'); none beside a
    thing ('A laptop and a man are sitting on a desk', 'A camera and a cat sit on a tripod'). None: none."""
    if not kg.is_animate(subject):
        return None
    person = kg.is_person(subject)
    if person and lexicon.posture_head(verb) in _postures():
        return (True, False)
    return (person,)


@lru_cache(maxsize=1)
def _postures() -> frozenset[str]:
    return frozenset(g[0] for g in lexicon.load("relations")["postures"])


def _modifies_noun(text: str, np: NP, span: Span) -> bool:
    """Does the attribute at `span` stand right before another word of its noun phrase (an attribute or
    the head), not before a word the parse dropped ('an old fashioned island': 'old' is not the island's)?"""
    rest = text[span[1]:np.head[0] + 1]
    at = span[1] + len(rest) - len(rest.lstrip(" -"))
    return at >= np.head[0] or at in {s for _, (s, _e) in np.atts}


def _first_categorised(atts: list[tuple[str, Span]]) -> tuple[str, Span] | None:
    """The first (attribute, span) of a known category other than a count."""
    category = lexicon.attribute_category()
    for t in atts:
        if category.get(t[0]) not in (None, "count"):
            return t
    return None


def _same_category_pair(xs: list[tuple[str, Span]], ys: list[tuple[str, Span]], categories: frozenset[str]
                        ) -> tuple[tuple[str, Span], tuple[str, Span]] | None:
    """The first (attribute, span) of `xs` and of `ys` in one of `categories`."""
    category = lexicon.attribute_category()
    for x in xs:
        cat = category.get(x[0])
        if cat not in categories:
            continue
        for y in ys:
            if category.get(y[0]) == cat:
                return x, y
    return None


@lru_cache(maxsize=1)
def _stop_words() -> frozenset[str]:
    """spaCy's English stop words (imported when first asked: spaCy is slow to import)."""
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset(STOP_WORDS)


@lru_cache(maxsize=1)
def _swappable() -> frozenset[str]:
    """Every attribute category but counts ('two cups and a red plate' has nothing to swap)."""
    return frozenset(lexicon.load("attributes")["categories"]) - {"count"}


@lru_cache(maxsize=1)
def _exclusive() -> frozenset[str]:
    return frozenset(lexicon.load("attributes")["exclusive"])


@lru_cache(maxsize=1 << 14)
def _and_phrase(to: str) -> str:
    det = lexicon.determiner(to, False, to)
    return f" and {det + ' ' if det else ''}{to}"
