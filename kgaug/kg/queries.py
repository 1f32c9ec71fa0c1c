"""The questions pass 2 asks the KG about words: is X the same as Y (never a valid replacement), what
may replace X, what the corpus shows of X, and how plausible a fact is. They read the corpus counts,
WordNet, the VG synset maps, ConceptNet and the lexicon, which do not change in pass 2: answers are
memoised (`PairMemo`, `Kept`, `MetNames` and plain dicts), and dropped when counts change again.
"""

from __future__ import annotations

from kgaug import lexicon
from kgaug.kg.counts import CorpusCounts
from kgaug.kg.loaders import ConceptNet
from kgaug.vgmeta import VGMeta
from kgaug.wordnet import WordNet, sense_key

MAX_OBJECT_CANDIDATES = 30
PAIR_MEMO_SIZE = 1 << 20  # sameness answers pass 2 keeps per kind (then it starts afresh)
# Two locative prepositions are the same for an object when the corpus uses each with it at least twice
# and at least this share as often as the other ('in the field' / 'on the field'; not 'in the table').
LOCATIVE_SHARE = 0.1
# reverse_rel: each word takes its new role in at least this share of its uses with the predicate.
ROLE_SHARE = 0.25
# An attribute this share of an object's attributes of its category in the corpus (seen at least
# twice) is typical of it ('blue sky', 'glass window'): add_att never adds it (the picture likely shows it).
TYPICAL_SHARE = 0.5
# An object the corpus has in this share of the images of an object already named (at least twice)
# is likely in the picture ('a kitchen … and a chair'): add_obj never adds it.
PRESENT_SHARE = 0.5
NATURAL_KINDS = frozenset({"noun.animal", "noun.plant", "noun.object", "noun.substance"})
SPREAD = 3  # odd_attribute: an attribute the corpus has on fewer objects is a word for those ('blonde' hair)
# WordNet lexicographer files of nouns that name something a picture shows (replace_obj puts no other).
DEPICTED_KINDS = frozenset({"noun.artifact", "noun.animal", "noun.person", "noun.food", "noun.plant", "noun.object",
                            "noun.body", "noun.substance"})


def _sat(c: float, k: float = 2.0) -> float:
    return c / (c + k)


class PairMemo:
    """Answers of a pure two-word question, as one dict per first word (`row(a).get(b)`): lookups
    cost no tuple. Bounded: past `limit` answers it is dropped and refilled (answers never change)."""

    def __init__(self, limit: int = PAIR_MEMO_SIZE) -> None:
        self.limit = limit
        self.rows: dict[str, dict[str, bool]] = {}
        self.size = 0

    def row(self, a: str) -> dict[str, bool]:
        r = self.rows.get(a)
        if r is None:
            r = self.rows[a] = {}
        return r

    def put(self, row: dict[str, bool], b: str, answer: bool) -> bool:
        if self.size >= self.limit:
            self.clear()
        row[b] = answer
        self.size += 1
        return answer

    def clear(self) -> None:
        self.rows.clear()
        self.size = 0


class Kept:
    """The items of a list that pass a costly test, in order, tested only as far as asked."""

    def __init__(self, items: list[str], keep, cap: int | None = None) -> None:
        self.items = items
        self.keep = keep
        self.cap = cap  # at most this many are ever kept
        self.kept: list[str] = []
        self.tested = 0

    def first(self, n: int | None) -> tuple[str, ...]:
        if self.cap is not None:
            n = self.cap if n is None else min(n, self.cap)
        kept, items = self.kept, self.items
        while (n is None or len(kept) < n) and self.tested < len(items):
            item = items[self.tested]
            self.tested += 1
            if self.keep(item):
                kept.append(item)
        return tuple(kept[:n])


class MetNames:
    """The object names pass 2 has met (in images), indexed by their `object_signature` keys, and
    per word the met names that share a key the right way with it (`same_object` without
    ConceptNet). A word's answer is kept with the number of names met when it was made; names met
    later are checked one by one, or all again through the index when there are many."""

    RECHECK_AT = 8  # names met since an answer beyond which it is remade through the index

    def __init__(self) -> None:
        self.order: list[str] = []
        self.known: set[str] = set()
        self.by_own: dict[tuple, set[str]] = {}  # key of own senses/identity -> names
        self.by_up: dict[tuple, set[str]] = {}  # key of ancestors/identity -> names
        self.answers: dict[str, tuple[int, set[str]]] = {}

    def add(self, name: str, own: frozenset, up: frozenset) -> None:
        for k in own:
            self.by_own.setdefault(k, set()).add(name)
        for k in up:
            self.by_up.setdefault(k, set()).add(name)
        self.known.add(name)
        self.order.append(name)

    def matches(self, a: str, own: frozenset, up: frozenset, same) -> set[str]:
        """Met names `n` with `same(a, n)`, i.e. own(a) meets up(n) or own(n) meets up(a)."""
        seen = self.answers.get(a)
        met = len(self.order)
        if seen is not None and seen[0] == met:
            return seen[1]
        if seen is not None and met - seen[0] <= self.RECHECK_AT:
            hits = seen[1]
            hits.update([n for n in self.order[seen[0]:] if same(a, n)])
        else:
            hits = set()
            for k in own:
                found = self.by_up.get(k)
                if found:
                    hits |= found
            for k in up:
                found = self.by_own.get(k)
                if found:
                    hits |= found
        self.answers[a] = (met, hits)
        return hits

    def clear(self) -> None:
        self.order.clear()
        self.known.clear()
        self.by_own.clear()
        self.by_up.clear()
        self.answers.clear()


class Questions:
    """What pass 2 asks of the corpus counts and outside knowledge (the methods below), with the memos of
    their answers. The counters are `counts`' own (updated in place, never replaced), so the answers
    read them directly; `forget_counted` drops what they depend on when counts change."""

    def __init__(self, counts: CorpusCounts, conceptnet: ConceptNet, wordnet: WordNet, vg: VGMeta) -> None:
        self.wn = wordnet
        self.vg = vg
        self.obj = counts.obj
        self.att = counts.att
        self.pred = counts.pred
        self.obj_att = counts.obj_att
        self.subj_pred = counts.subj_pred
        self.pred_obj = counts.pred_obj
        self.cooc = counts.cooc
        self.conceptnet = conceptnet
        self._cn = conceptnet.neighbours  # bound once: asked per pair by the sameness tests
        self._cands: dict = {}  # (kind, word) -> Kept or tuple
        self._firsts: dict[tuple[str, str, int | None], tuple[str, ...]] = {}  # (kind, word, limit) -> `_cands` answer
        self._cooc_adj: dict[str, list[str]] | None = None
        self._att_adj: dict[str, list[str]] | None = None
        self._spread: dict[str, int] | None = None
        self._describable: dict[str, bool] = {}
        self._predicative: dict[str, bool] = {}
        self._att_keys: dict[str, frozenset] = {}
        self._keys: dict[str, tuple[frozenset, frozenset, frozenset]] = {}
        self._index: dict[str, tuple] = {}
        self._frequent: list[str] | None = None
        # Plausibility scores and per-object pools, memoised for pass 2 (counts are final by then;
        # `forget_counted` drops them if counts change again).
        self._p_att: dict[tuple[str, str], float] = {}
        self._p_rel: dict[tuple[str, str, str], float] = {}
        self._pools: dict[str, tuple] = {}
        self._editable: dict[tuple[str, str | None], bool] = {}
        self._person: dict[str, bool] = {}
        # Sameness look-ups for Evidence (pure functions of the final KG, filled in pass 2).
        self._met = MetNames()
        self._same_att = PairMemo()
        self._same_pred = PairMemo()
        self._locative: dict[tuple[str, str, str], bool] = {}  # (p, q, object), p < q -> `same_place`
        self._grounds: dict[tuple[str, str], bool] = {}  # (p, object) -> `grounds`

    def answered(self) -> bool:
        """Has a question that reads the counts been answered (memoised) since they last changed?"""
        return bool(self._p_att or self._cands or self._cooc_adj is not None)

    def forget_counted(self) -> None:
        """Drop the answers pass 2 memoises (those that read the counts among them: they are about to
        change). What reads only WordNet, the VG maps and ConceptNet stays (see `forget_all`)."""
        for memo in (self._p_att, self._p_rel, self._pools, self._editable, self._person, self._cands, self._firsts, self._met,
                     self._same_att, self._same_pred, self._locative, self._grounds):
            memo.clear()
        self._cooc_adj = self._att_adj = self._frequent = self._spread = None

    def forget_all(self) -> None:
        """Drop every memoised answer, also those that read only WordNet, the VG maps and ConceptNet."""
        self.forget_counted()
        for memo in (self._keys, self._index, self._att_keys, self._describable, self._predicative):
            memo.clear()

    # -- sameness (never a valid replacement) ---------------------------------------------------
    def _object_keys(self, name: str) -> tuple[frozenset, frozenset, frozenset]:
        """(identity keys, own WordNet senses, WordNet ancestors) of an object name, cached."""
        k = self._keys.get(name)
        if k is None:
            keys: set[tuple[str, object]] = {("n", name), ("n", lexicon.singular(name)[0])}
            vs = self.vg.object_synset.get(name)
            if vs:
                keys.add(("vs", vs))
            va = self.vg.object_alias.get(name)
            if va is not None:
                keys.add(("va", va))
            forms = dict.fromkeys((name, lexicon.singular(name)[0]))  # "people" is also "person"
            senses = frozenset(s.name() for f in forms for s in self.wn.noun_synsets(f))
            keys |= {("wn", x) for x in senses}
            keys |= {("n", x) for x in self._cn(name, ("cn:Synonym", "cn:FormOf"))}
            top = frozenset(sense_key(s) for f in forms for s in self.wn.noun_synsets(f)[:2])  # as ancestors
            anc = frozenset().union(*(self.wn.ancestors(f) for f in forms))
            k = self._keys[name] = (frozenset(keys), top, anc)
        return k

    def object_signature(self, name: str) -> tuple[frozenset, frozenset]:
        """(identity keys + own senses, identity keys + ancestors) of a name, senses tagged
        ("sense", s), cached: `a` and `b` share identity keys, or the senses of one are ancestors of
        the other, exactly when the first of one meets the second of the other."""
        sig = self._index.get(name)
        if sig is None:
            keys, top, anc = self._object_keys(name)
            sig = self._index[name] = (keys | {("sense", t) for t in top}, keys | {("sense", t) for t in anc})
        return sig

    def same_object(self, a: str, b: str) -> bool:
        """Could `b` name what `a` names: same word, synonym (VG synset/alias, WordNet, ConceptNet)
        or a kind of it / a kind it is (dog vs animal)."""
        if a == b:
            return True
        if self.same_object_sig(a, b):
            return True
        return b in self._cn(a, ("cn:IsA",)) or a in self._cn(b, ("cn:IsA",))

    def meet(self, names: set[str]) -> None:
        """Index those of `names` not met before (`same_objects` answers through the names met)."""
        met = self._met
        new = names - met.known
        if new:
            for n in sorted(new):
                met.add(n, *self.object_signature(n))

    def same_objects(self, a: str, names: set[str], met: bool = False) -> set[str]:
        """Those of `names` that could name what `a` names (`same_object(a, n)`), through the names
        met so far (see `MetNames`): once they are known, a question is a set intersection.
        `met=True`: the caller has already called `meet(names)` (Evidence does, once per image)."""
        if not met:
            self.meet(names)
        hits = self._met.matches(a, *self.object_signature(a), self.same_object_sig) & names
        if self.conceptnet.rows:
            hits.update([n for n in names if n not in hits and self.same_object(a, n)])
        return hits

    def same_object_sig(self, a: str, b: str) -> bool:
        """`same_object` without ConceptNet: `a` and `b` share an identity key, or one's own senses
        are among the other's ancestors."""
        own_a, up_a = self.object_signature(a)
        own_b, up_b = self.object_signature(b)
        return not own_a.isdisjoint(up_b) or not own_b.isdisjoint(up_a)

    def same_attribute_any(self, a: str, groups: list[set[str]]) -> bool:
        """Is any attribute of these groups the same as `a` (`same_attribute`)?"""
        memo = self._same_att
        row = memo.row(a)
        unknown = []
        for atts in groups:
            for b in atts:
                v = row.get(b)
                if v:
                    return True
                if v is None:
                    unknown.append(b)
        # The tests that read only `a`'s synonyms first: each `b`'s (WordNet) only if they all fail.
        for b in unknown:
            if self._same_attribute_by_a(a, b):
                memo.put(row, b, True)
                return True
        for b in unknown:
            if memo.put(row, b, self._same_attribute_by_b(a, b)):
                return True
        return False

    def attribute_keys(self, a: str) -> frozenset:
        """Identity keys of an attribute: two attributes sharing one are the same (grey/gray). WordNet
        synonyms are not among them: `same_attribute` asks WordNet about the pair (`is_synonym`), which
        reads far less of it than listing every synonym."""
        k = self._att_keys.get(a)
        if k is None:
            keys = {("n", a)} | {("n", x) for x in lexicon.attribute_same().get(a, ())}
            vs = self.vg.attribute_synset.get(a)
            if vs:
                keys.add(("vs", vs))
            keys |= {("n", x) for x in self._cn(a, ("cn:Synonym", "cn:FormOf", "cn:SimilarTo"))}
            k = self._att_keys[a] = frozenset(keys)
        return k

    def same_attribute(self, a: str, b: str) -> bool:
        """Same word, a synonym of the other (lexicon, WordNet, ConceptNet), or one VG synset."""
        row = self._same_att.row(a)  # the answers `same_attribute_any` keeps
        v = row.get(b)
        if v is None:
            v = self._same_att.put(row, b, self._same_attribute_by_a(a, b) or self._same_attribute_by_b(a, b))
        return v

    def _same_attribute_by_a(self, a: str, b: str) -> bool:
        """The part of `same_attribute` that reads only `a`'s synonyms: same word, `b` a synonym of
        `a`, or one VG synset."""
        if a == b or ("n", b) in self.attribute_keys(a):
            return True
        va = self.vg.attribute_synset.get(a)
        return (va is not None and va == self.vg.attribute_synset.get(b)) or self.wn.is_synonym(b, a, "a")

    def _same_attribute_by_b(self, a: str, b: str) -> bool:
        """The rest of `same_attribute`: `a` a synonym of `b`."""
        return ("n", a) in self.attribute_keys(b) or self.wn.is_synonym(a, b, "a")

    def same_predicate(self, a: str, b: str) -> bool:
        row = self._same_pred.row(a)
        v = row.get(b)
        if v is None:
            v = self._same_pred.put(row, b, self._same_predicate(a, b))
        return v

    def _same_predicate(self, a: str, b: str) -> bool:
        if a == b or b in lexicon.predicate_same().get(a, ()) or self.vg.same_predicate(a, b):
            return True
        # "sitting on" states "on": a verb + preposition predicate is the same as its bare preposition.
        wa, wb = a.split(" "), b.split(" ")
        if (len(wa) > len(wb) and wa[-len(wb):] == wb) or (len(wb) > len(wa) and wb[-len(wa):] == wa):
            return True
        # "holding up" states "holding": a phrasal verb is the same as its bare verb.
        if len(wa) < len(wb):
            wa, wb = wb, wa
        return len(wa) == len(wb) + 1 and wa[:-1] == wb and wa[-1] in lexicon.relation_words("particles")

    def same_place(self, p: str, q: str, o: str) -> bool:
        """Two locative predicates that state the same of object `o` ('a dog in the field' is 'a dog on
        the field'): both in the lexicon's `locative` list, and the corpus uses both with `o` alike
        (`LOCATIVE_SHARE`). Not for 'in the table' / 'on the table', which the corpus tells apart."""
        if p == q:
            return True
        loc = lexicon.relation_words("locative")
        if p not in loc or q not in loc:
            return False
        key = (p, q, o) if p < q else (q, p, o)
        v = self._locative.get(key)
        if v is None:
            a, b = self.pred_obj.get((p, o), 0), self.pred_obj.get((q, o), 0)
            lo, hi = min(a, b), max(a, b)
            v = self._locative[key] = lo >= 2 and lo >= LOCATIVE_SHARE * hi
        return v

    def describable(self, a: str) -> bool:
        """An attribute that can stand before a noun ('a red car'; not 'a here car', 'an using man')."""
        ok = self._describable.get(a)
        if ok is None:
            if a in lexicon.attribute_category():
                ok = True
            elif "-" in a and " " not in a and a.replace("-", "").isalpha():  # "half-eaten", "well-lit"
                last = a.rsplit("-", 1)[1]
                ok = self.describable(last) or self.wn.is_participle(last)
            elif " " in a or a in lexicon.not_prenominal() or not a.isalpha():
                ok = False
            elif self.wn.enabled:
                ok = bool(self.wn.first_synsets(a, "a", 1) or self.wn.first_synsets(a, "s", 1)) or a.endswith("ed")
            else:
                ok = a.endswith(("ed", "en", "ful", "ous", "ic", "al", "less", "y"))
            self._describable[a] = ok
        return ok

    def predicative(self, a: str) -> bool:
        """An attribute that reads after 'is' ('the dog is black'; not 'the people are four', 'the bike
        is speed'): `lexicon.predicative`, and with WordNet a word outside the lexicon's categories
        must also have an adjective sense or be a participle ('the window is locked')."""
        ok = self._predicative.get(a)
        if ok is None:
            ok = lexicon.predicative(a)
            if ok and self.wn.enabled and lexicon.attribute_category().get(a) is None:
                ok = self.wn.adjective_senses(a) > 0 or self.wn.is_participle(a)
            self._predicative[a] = ok
        return ok

    # -- replacement candidates -----------------------------------------------------------------
    def object_candidates(self, o: str, limit: int = MAX_OBJECT_CANDIDATES) -> tuple[str, ...]:
        """Up to `limit` objects that may replace `o` (never one `same_object` as it). The sameness
        test reads WordNet ancestors, so it runs only as far down the list as a caller asks."""
        first = self._firsts.get(("obj", o, limit))
        if first is not None:
            return first
        key = ("obj", o)
        found = self._cands.get(key)
        if found is None:
            cands: dict[str, None] = {}
            for c in self.wn.cohyponyms(o):
                if self.obj[c] > 0 and self.wn.sister_sense(o, c):
                    cands[c] = None
            for c in self._cn(o, ("cn:DistinctFrom", "cn:Antonym")):
                cands[c] = None
            for parent in self._cn(o, ("cn:IsA",)):
                for c in self._cn(parent, ("cn:IsA",)):
                    cands[c] = None
            if len(cands) < 3:  # KG neighbours: objects seen with this one, of the same WordNet kind
                lex = self.wn.lexname(o)
                for c in self._cooc_neighbours().get(o, ())[:40]:
                    if not lex or self.wn.lexname(c) == lex:
                        cands[c] = None
            found = self._cands[key] = Kept([c for c in cands if c != o and not lexicon.is_not_object(c)],
                                            lambda c: not self.same_object(o, c), MAX_OBJECT_CANDIDATES)
        first = self._firsts["obj", o, limit] = found.first(limit)
        return first

    def _cooc_neighbours(self) -> dict[str, list[str]]:
        if self._cooc_adj is None:
            adj: dict[str, list[tuple[int, str]]] = {}
            for (a, b), n in self.cooc.items():
                adj.setdefault(a, []).append((-n, b))
                adj.setdefault(b, []).append((-n, a))
            self._cooc_adj = {k: [c for _, c in sorted(v)] for k, v in adj.items()}
        return self._cooc_adj

    def seen_attributes(self, o: str) -> list[str]:
        """Attributes the corpus shows on this object, most frequent first."""
        if self._att_adj is None:
            adj: dict[str, list[tuple[int, str]]] = {}
            for (obj, a), n in self.obj_att.items():
                adj.setdefault(obj, []).append((-n, a))
            self._att_adj = {k: [a for _, a in sorted(v)[:30]] for k, v in adj.items()}
        return self._att_adj.get(o, [])

    def addable_attributes(self, o: str) -> tuple[tuple[str, str], ...]:
        """(attribute, category) that add_att may put on `o`: describable ones the corpus shows on it
        (no colour it never shows there: 'a white giraffe'), but not typical of it (`typical`: 'blue
        sky', 'glass window' are likely what the picture shows); known category, not a count, allowed
        on this object; first occurrence kept."""
        key = o
        pool = self._pools.get(key)
        if pool is None:
            out: dict[str, str] = {}
            for a in [a for a in self.seen_attributes(o) if self.describable(a)]:
                cat = self.attribute_category(a)
                if a in out or cat is None or cat == "count" or not self.editable_category(o, cat):
                    continue
                if self.typical(o, a) or (a in lexicon.load("attributes")["not_on_people_words"] and self.is_person(o)):
                    continue
                out[a] = cat
            pool = self._pools[key] = tuple(out.items())
        return pool

    def typical(self, o: str, a: str) -> bool:
        """The corpus has `a` on `o` at least twice and in `TYPICAL_SHARE` of the attributes of that
        category it has on `o` ('blue' of 'sky')."""
        n = self.obj_att.get((o, a), 0)
        if n < 2:
            return False
        cat = lexicon.attribute_category().get(a)
        total = sum(self.obj_att.get((o, b), 0) for b in lexicon.load("attributes")["categories"].get(cat, ()))
        return n >= TYPICAL_SHARE * max(total, n)

    def odd_attribute(self, o: str, a: str) -> bool:
        """Would `a` read oddly on `o`: the corpus never shows it there and has a typical attribute of
        its category on `o` ('a blue road' where roads are grey)?"""
        if self.shows_attribute(o, a):
            return False
        if self.natural_kind(o) or self._att_spread().get(a, 0) < SPREAD:
            return True  # 'green cows', 'white grass', 'a blonde sweater': nature's colours, a word for hair
        cat = lexicon.attribute_category().get(a)
        return any(self.typical(o, b) for b in lexicon.load("attributes")["categories"].get(cat, ()))

    def natural_kind(self, o: str) -> bool:
        """An animal, a plant, a natural object or substance (WordNet's first sense; 'grass', 'sky',
        'water'): nature gives its colours, so only those the corpus shows on it are plausible."""
        return self.is_animate(o) or self.wn.lexname(o) in NATURAL_KINDS

    def _att_spread(self) -> dict[str, int]:
        """attribute -> how many objects the corpus has it on."""
        if self._spread is None:
            spread: dict[str, int] = {}
            for (_o, a), n in self.obj_att.items():
                if n > 0:
                    spread[a] = spread.get(a, 0) + 1
            self._spread = spread
        return self._spread

    def likely_present(self, o: str, names: list[str]) -> bool:
        """The corpus has `o` in at least `PRESENT_SHARE` of the images of one of `names` (each seen at
        least twice): a picture of that one likely shows `o` too ('a kitchen' and 'a chair')."""
        count = self.cooc.get
        for x in names:
            n = self.obj.get(x, 0)
            if n >= 2 and count((o, x) if o < x else (x, o), 0) >= PRESENT_SHARE * n:
                return True
        return False

    def seen_together(self, a: str, b: str) -> bool:
        """Does the corpus have `a` and `b` in one image?"""
        return a == b or self.cooc.get((a, b) if a < b else (b, a), 0) > 0

    def fits_scene(self, o: str, scene: list[str]) -> bool:
        """Does the corpus have `o` in images with each of `scene` (the objects a caption names, people
        and background left out)? What an object added to a caption needs to read as part of that scene
        ('a sheep' beside a dog on a bed, 'an elephant' in a living room do not)."""
        return all(self.seen_together(o, x) for x in scene)

    def cooccurring(self, o: str) -> list[str]:
        """Objects seen in the same images as `o`, most often first; else the most frequent objects."""
        neigh = self._cooc_neighbours().get(o)
        if neigh:
            return neigh
        if self._frequent is None:
            self._frequent = [n for n, _ in sorted(self.obj.items(), key=lambda kv: (-kv[1], kv[0]))[:50]]
        return self._frequent

    def attribute_candidates(self, a: str, limit: int | None = None) -> tuple[str, ...]:
        """Attributes that may replace `a` (never one `same_attribute` as it), the first `limit` of
        them: the sameness test reads WordNet synonyms, so it runs only as far as asked."""
        first = self._firsts.get(("att", a, limit))
        if first is not None:
            return first
        key = ("att", a)
        found = self._cands.get(key)
        if found is None:
            cands: dict[str, None] = {}
            for c in lexicon.attribute_antonyms().get(a, ()):
                cands[c] = None
            for c in self.wn.antonyms(a, "a"):
                if self.att.get(c, 0) > 0:  # a WordNet antonym the corpus uses ('argillaceous' it does not)
                    cands[c] = None
            cat = lexicon.attribute_category().get(a)
            if cat in lexicon.load("attributes")["exclusive"]:
                for c in lexicon.load("attributes")["categories"][cat]:
                    cands[c] = None
            found = self._cands[key] = Kept(list(cands), lambda c: lexicon.contradicts(a, c)
                                            and not self.same_attribute(a, c))  # not grey for silver
        first = self._firsts["att", a, limit] = found.first(limit)
        return first

    def predicate_candidates(self, p: str) -> tuple[str, ...]:
        """Predicates that may replace `p` so that the caption becomes false. A preposition only by one
        that contradicts it, its converse in place ('on' -> 'under', 'left of' -> 'right of', 'in' ->
        'outside'): 'with', 'at', 'in' and 'on' are no contradictions of each other ('a kitchen on a
        refrigerator', 'a toddler on a toothbrush') and a vague one ('near') is true of most pairs in a
        picture, so a preposition without a converse has no replacement. A posture or gait by another,
        the preposition kept ('sitting on' -> 'standing on'; the lexicon's `postures`). Another verb by
        a verb ('cooking' -> 'holding', not 'a person on an egg'). Never one `same_predicate` as it."""
        key = ("pred", p)
        found = self._cands.get(key)
        if found is None:
            rel = lexicon.load("relations")
            cands: dict[str, None] = dict.fromkeys(lexicon.relation_antonyms().get(p, ()))
            first, _, place = p.partition(" ")
            others = lexicon.postures().get(first)
            if others is not None and place in rel["posture_places"]:
                cands.update(dict.fromkeys(f"{v} {place}".strip() for v in others))
            elif p in rel["verbs"] or (first.endswith(("ing", "ed")) and self.pred[p] > 0):
                postures = lexicon.postures()
                cands.update(dict.fromkeys(v for v in rel["verbs"] if v.partition(" ")[0] not in postures))
            vague = lexicon.relation_words("vague")
            found = self._cands[key] = tuple(c for c in cands if c not in vague and not self.same_predicate(p, c))
        return found

    def attribute_category(self, a: str) -> str | None:
        return lexicon.attribute_category().get(a)

    def is_group(self, o: str) -> bool:
        """A name of several people or things at once ('people', 'crowd', 'family'; 'a herd', 'a group'):
        one posture need not hold for all of them."""
        return o in lexicon.load("attributes")["people"] or lexicon.is_quantifier(o)

    def is_person(self, o: str) -> bool:
        """A person or a group of people ('people', 'crowd': the lexicon's `people` list)."""
        ok = self._person.get(o)
        if ok is None:
            lex = self.wn.lexname(o)  # (the first sense's: a cat, a bear is an animal, not 'a guy', 'an investor')
            ok = self._person[o] = (o in lexicon.sensitive_words() or o in lexicon.load("attributes")["people"]
                                    or lex == "noun.person"
                                    or (lex in (None, "", "noun.Tops")  # 'person' itself is WordNet's noun.Tops
                                        and self.wn.is_kind_of(o, "person")))
        return ok

    def is_animate(self, o: str) -> bool:
        """A person, an animal or another noun the lexicon lists as doing things (`agents`)."""
        return self.is_person(o) or lexicon.is_agent(o) or self.wn.is_kind_of(o, "animal")

    def knows_word(self, word: str) -> bool:
        """WordNet has the word (True when WordNet is off): a caption with a word it lacks ('sittingon',
        'pictuers') is not edited into a negative."""
        return self.wn.knows(word)

    def same_kind(self, a: str, b: str) -> bool:
        """Do the two nouns name things of one WordNet kind (lexicographer file: person, animal, food,
        artifact, ...)? True where WordNet does not know one of them (or is off)."""
        la, lb = self.wn.lexname(a), self.wn.lexname(b)
        return not la or not lb or la == lb

    def depicted_kind(self, o: str) -> bool:
        """A noun whose first WordNet sense is a thing a picture shows (an artifact, animal, person,
        food, plant, natural object, body part or substance), not a place, act or quantity ('a
        direction', 'an amount', 'a game'); True where WordNet does not know it."""
        lex = self.wn.lexname(o)
        return not lex or lex in DEPICTED_KINDS

    def editable_category(self, o: str, cat: str | None) -> bool:
        """May an attribute of this category be added to / replaced on this object?"""
        ok = self._editable.get((o, cat))
        if ok is None:
            attributes = lexicon.load("attributes")
            ok = self._editable[o, cat] = not (cat in attributes["not_on_people"]
                                               and (self.is_person(o) or o in attributes["skin"]))
        return ok

    def shows_attribute(self, o: str, a: str) -> bool:
        """The corpus has attribute `a` on object `o` at least once (what moving `a` onto `o` needs)."""
        return self.obj_att.get((o, a), 0) > 0

    def takes_role(self, s: str | None, p: str, o: str | None) -> bool:
        """The corpus has `s` as a subject of `p` (not asked when None) and `o` as an object of it: what
        an edit that gives an object a new role must show ('sneakers wearing a man' has no such
        evidence; 'a man wearing sneakers' has)."""
        return (s is None or self.subj_pred.get((s, p), 0) > 0) and (o is None or self.pred_obj.get((p, o), 0) > 0)

    def grounds(self, p: str, o: str) -> bool:
        """May something be `p` object `o`? What a preposition's converse needs before it replaces the
        preposition. For a preposition the lexicon lists under `grounds`: `o` is a kind of one of its
        nouns (WordNet: 'under a table', 'outside a room'; not 'under the pavement', 'outside his hand',
        'outside jeans'), or the corpus has something `p` `o` (with `p` or a predicate that states the
        same). Any other preposition ('behind', 'left of') takes any object."""
        v = self._grounds.get((p, o))
        if v is None:
            kinds = lexicon.load("relations")["grounds"].get(p)
            if kinds is None:
                v = True
            else:
                same = lexicon.predicate_same().get(p, frozenset())
                v = (any(self.wn.is_kind_of(o, k) for k in kinds)
                     or any(self.pred_obj.get((q, o), 0) > 0 for q in (p, *sorted(same))))
            self._grounds[p, o] = v
        return v

    def reversible(self, s: str, p: str, o: str) -> bool:
        """May `p(s, o)` be stated as `p(o, s)`? The corpus has `o` as a subject of `p` and `s` as an
        object of it, each in at least `ROLE_SHARE` of that word's uses with `p`: a word the corpus
        almost only has under something ('a window on a building', 'a plate on a table') does not
        become what is on it ('a building on a window')."""
        fig, gnd = self.subj_pred.get((o, p), 0), self.pred_obj.get((p, s), 0)
        if not fig or not gnd:
            return False
        return (fig >= ROLE_SHARE * (fig + self.pred_obj.get((p, o), 0))
                and gnd >= ROLE_SHARE * (gnd + self.subj_pred.get((s, p), 0)))

    def is_spatial(self, p: str) -> bool:
        """A preposition from the lexicon's spatial vocabulary (anything can stand there); else a verb
        or another predicate whose subject must be one that does it."""
        return p in lexicon.relation_words("spatial")

    # -- plausibility in [0, 1] -----------------------------------------------------------------
    def plausibility_att(self, o: str, a: str) -> float:
        v = self._p_att.get((o, a))
        if v is None:
            # (.get: a Counter answers a missing key through a Python-level __missing__; also 0)
            v = 0.7 * _sat(self.obj_att.get((o, a), 0)) + 0.2 * _sat(self.att.get(a, 0), 10)
            if a in self._cn(o, ("cn:HasProperty",)):
                v += 0.3
            v = self._p_att[o, a] = min(1.0, v)
        return v

    def plausibility_rel(self, s: str, p: str, o: str) -> float:
        v = self._p_rel.get((s, p, o))
        if v is None:
            v = (0.4 * _sat(self.subj_pred.get((s, p), 0)) + 0.4 * _sat(self.pred_obj.get((p, o), 0))
                 + 0.2 * _sat(self.pred.get(p, 0), 10))
            if p in ("on", "in", "on top of", "inside") and o in self._cn(s, ("cn:AtLocation",)):
                v += 0.3
            v = self._p_rel[s, p, o] = min(1.0, v)
        return v

    def plausibility_cooc(self, o: str, others: list[str]) -> float:
        if not others:
            return 0.5 * _sat(self.obj.get(o, 0), 10)
        count = self.cooc.get  # keys are sorted pairs
        best = 0
        for x in others:
            n = count((o, x) if o < x else (x, o), 0)
            if n > best:
                best = n
        n = self.obj.get(o, 0)
        return min(1.0, 0.7 * (best / (best + 2.0)) + 0.3 * (n / (n + 10)))  # `_sat` inlined: called per candidate

    def association(self, o: str, others: list[str]) -> float:
        """How specifically the corpus pairs `o` with one of `others`: the largest share of `o`'s
        occurrences that come with that object (a lamp's shade: high; a chair, which comes with
        everything, for a lamp: low). What add_obj ranks by, so that added objects spread over the
        plausible ones instead of repeating the most frequent ('… and a chair' for 59 of 197 VG images)."""
        n = self.obj.get(o, 0)
        if not n or not others:
            return 0.0
        count = self.cooc.get
        return min(1.0, max(count((o, x) if o < x else (x, o), 0) for x in others) / n)
