"""Human captions -> `Caption` (noun phrases, attribute and relation spans) with a spaCy parse.

Objects are noun-chunk heads ("a group of people" -> people); attributes come from amod, compound,
nummod and acomp (+ their conjuncts); relations from subject-verb-object and noun/verb-preposition-
object, including multi-word prepositions ("next to", "in front of", "on top of").

`to_caption` reads a parse in phases, each a function below it: `collect_noun_phrases` (with
`chunk_object` for collective nouns and `modifier_attributes`), `attach_predicate_adjectives`,
`sentence_agent` and `subject_of` (which object a phrase is about), `prepositional_relations` (with
`prep_phrase`, `prep_subject`, `prep_wording`) and `verb_object_relations` (with `verb_wording`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from kgaug import lexicon
from kgaug.captions import NP, Caption, RelSlot, Span

if TYPE_CHECKING:  # spaCy is imported only where a model is loaded
    from spacy.tokens import Doc, Token
    from spacy.tokens import Span as Chunk

INSTALL_HINT = ("spaCy model {name!r} is not installed: run `python -m spacy download {name}` "
                "(or pass --spacy-model NAME of an installed English pipeline with a parser)")
DISABLED = ("ner",)
_NUMBERS = {"2": "two", "3": "three", "4": "four", "5": "five", "6": "six", "7": "seven", "8": "eight",
            "9": "nine", "10": "ten"}
# "in front of X": the preposition's object is one of these nouns, itself followed by "of X".
_RELATIONAL_NOUNS = {"front": "in front of", "top": "on top of", "side": "on side of", "left": "left of",
                     "right": "right of", "middle": "in middle of"}
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


class SpacyModelMissing(RuntimeError):
    pass


@lru_cache(maxsize=4)
def load_nlp(name: str):
    import spacy

    try:
        nlp = spacy.load(name, disable=list(DISABLED))
    except OSError:
        raise SpacyModelMissing(INSTALL_HINT.format(name=name)) from None
    if "parser" not in nlp.pipe_names:
        raise SpacyModelMissing(f"spaCy model {name!r} has no dependency parser; use an English pipeline "
                                "such as en_core_web_sm")
    return nlp


def language_problem(text: str) -> str | None:
    """Why a caption is not usable English text, or None."""
    words = _WORD.findall(text)
    if not words:
        return "emoji-only or no words"
    non_ascii = sum(1 for w in words if not w.isascii())
    if non_ascii / len(words) > 0.3:
        return "non-English (non-Latin script)"
    letters = [c for w in words for c in w]
    accented = sum(1 for c in letters if not c.isascii() and unicodedata.category(c).startswith("L"))
    from spacy.lang.en.stop_words import STOP_WORDS

    lower = [w.lower() for w in words]
    if len(words) >= 4 and not any(w in STOP_WORDS for w in lower):
        return "non-English (no English function words)"
    if accented / max(1, len(letters)) > 0.05:
        return "non-English (accented letters)"
    return None


class NounName(NamedTuple):
    name: str  # canonical singular ("" when the word has none)
    plural: bool


def _noun_name(tok) -> NounName:
    plural = tok.tag_ in ("NNS", "NNPS")
    lemma = lexicon.clean(tok.lemma_ or tok.text)
    if not lemma:
        return NounName("", plural)
    if lemma == lexicon.clean(tok.text) and plural:
        lemma = lexicon.singular(lemma)[0]
    return NounName(lemma, plural)


def _run_together(tok) -> bool:
    """A noun the parser made a modifier of an -ing word inside another noun phrase: two phrases run
    together ("working in the kitchen rolling dough" parsed as "in the [kitchen rolling] dough"). Not
    a noun before a participle ("a snow covered ground")."""
    return tok.dep_ == "npadvmod" and tok.pos_ in ("NOUN", "PROPN") and tok.head.lower_.endswith("ing")


def _att_tokens(head) -> list:
    out = []
    for c in head.children:
        if c.dep_ == "amod" and any(_run_together(g) for g in c.children):
            continue  # "the kitchen rolling dough": 'rolling' is not the dough's attribute
        if c.dep_ in ("amod", "compound", "nummod") and c.i < head.i:
            out.append(c)
            out.extend(cc for cc in c.children if cc.dep_ == "conj" and cc.i < head.i)
    return out


def _att_span(tok) -> tuple[int, int]:
    """Character span of an attribute token with the words hyphenated to it ("half-eaten",
    "twenty-five", "well-lit": spaCy splits them, and the last word alone says something else)."""
    doc, i = tok.doc, tok.i
    while i >= 2 and doc[i - 1].text == "-" and not doc[i - 1].whitespace_ and not doc[i - 2].whitespace_:
        i -= 2
    return doc[i].idx, tok.idx + len(tok.text)


def _att_name(tok, span: tuple[int, int]) -> str:
    t = tok.doc.text[span[0]:span[1]].lower()
    if tok.dep_ == "nummod":
        return _NUMBERS.get(t, t if t.isalpha() else "")
    return lexicon.clean(t)


def _gerund(verb) -> str:
    return verb.lower_ if verb.tag_ == "VBG" else lexicon.gerund(verb.lemma_.lower())


def _passive(verb) -> bool:
    """A past participle read as passive: "is tied to", "has been parked on", "a bike parked on" (no
    auxiliary). "has walked to" (perfect, active) is not."""
    if verb.tag_ != "VBN":
        return False
    deps = [(c.dep_, c.lemma_) for c in verb.children]
    if any(d in ("auxpass", "nsubjpass") for d, _ in deps):
        return True
    return not any(d == "aux" and lemma == "have" for d, lemma in deps)


def _verb_predicate(verb) -> str:
    """How a verb reads between its subject and its object: the gerund ("sitting on"), except for a
    passive, which keeps its participle ("tied to", "covered with", "pulled by"): as a gerund it would
    state the relation the other way round ("a dog tying to a hydrant")."""
    return verb.lower_ if _passive(verb) else _gerund(verb)


def _stacked_on(tok, start, attach, supporting: frozenset[str]):
    """The object of the supporting phrase this one follows under the same (placing) verb, or None: spaCy
    hangs "on a stove" in "cooking eggs on a black pot on a stove" on the verb, but it says where the pot
    is."""
    if tok.lower_ not in supporting or start.i == 0:
        return None
    prev = start.doc[start.i - 1]
    if prev.dep_ != "pobj" or prev.head.dep_ != "prep" or prev.head.lower_ not in supporting:
        return None
    if prev.head.head.i != attach.i:
        return None
    return prev.i


@dataclass(frozen=True)
class Objects:
    """The objects a caption names so far: its noun phrases, and which word stands for which."""

    nps: list[NP]
    index: dict[int, int]  # token index of a noun-phrase head, or of a collective noun ("a herd of sheep":
    # 'herd') standing for its members -> position in nps


class ChunkObject(NamedTuple):
    """The noun through which a noun chunk names an object."""

    head: Token
    collective: Token | None = None  # 'herd' in "a herd of sheep" (head: 'sheep'), which stands for it
    depicted: bool = False  # a quantifier noun that is itself a thing in the picture ("a plate with ...")


class PrepPhrase(NamedTuple):
    """A prepositional phrase read as a relation: "next to a fence", "in front of a bar"."""

    prep: Token  # the word spaCy labels prep/agent ('to' of "next to", 'in' of "in front of")
    start: Token  # the phrase's first word ('next' of "next to")
    words: list[str]  # the predicate's words: ["in", "front", "of"]
    attach: Token  # the word the phrase hangs on: a noun or a verb
    end: Token  # its last word before the object ('of' of "in front of")
    obj: Token  # the object's head noun


class Wording(NamedTuple):
    """How a relation reads in a caption."""

    pred: str  # the predicate as written ("sitting on"), before `lexicon.predicate` canonicalises it
    span: Span  # the words stating it
    editable: bool  # an edit may replace the span with any prepositional or gerund predicate


def to_caption(doc: Doc) -> Caption:
    """A parsed caption as objects, attributes and relations, phase by phase: the noun phrases (a
    collective noun resolved to its members) with their modifiers, the adjectives stated with "be", then
    the relations of prepositional phrases and of verbs with a direct object."""
    objects = attach_predicate_adjectives(doc, collect_noun_phrases(doc))
    agent = sentence_agent(doc, objects)
    rels = prepositional_relations(doc, objects, agent) + verb_object_relations(doc, objects, agent)
    return Caption(doc.text, objects.nps, rels, "human", any(t.pos_ in ("VERB", "AUX") for t in doc))


# --- objects and their attributes -----------------------------------------------------------------


def collect_noun_phrases(doc: Doc) -> Objects:
    """The objects a caption names: noun-chunk heads, once each, in the caption's order ("A man riding a
    horse on a beach" -> man, horse, beach). A collective noun stands for its members (`chunk_object`),
    which may also be a chunk of their own: they are one object."""
    nps: list[NP] = []
    index: dict[int, int] = {}
    for chunk in doc.noun_chunks:
        target = chunk_object(chunk)
        if target is None:
            continue
        if target.head.i not in index:
            np = noun_phrase(target.head, chunk[0], target.depicted)
            if np is not None:
                index[target.head.i] = len(nps)
                nps.append(np)
        if target.collective is not None and target.head.i in index:
            # verbs and phrases attached to "group" belong to the people
            index.setdefault(target.collective.i, index[target.head.i])
    return Objects(nps, index)


def chunk_object(chunk: Chunk) -> ChunkObject | None:
    """Collective nouns and counts: "a herd of sheep", "a couple of airplanes", "a pair of scissors" name
    their members (sheep, airplane, scissor), and the collective noun stands for them. A quantifier
    without "of X" names nothing ("a lot"), except one that is itself a thing in the picture ("a plate
    with a donut"). None: the chunk names no object (its head is not a noun, or a bare quantifier)."""
    head = chunk.root
    if head.pos_ not in ("NOUN", "PROPN"):
        return None
    name = lexicon.clean(head.lemma_)
    if not lexicon.is_quantifier(name):
        return ChunkObject(head)
    members = [p for c in head.children if c.dep_ == "prep" and c.lower_ == "of"
               for p in c.children if p.dep_ == "pobj" and p.pos_ in ("NOUN", "PROPN")]
    if members:
        return ChunkObject(members[0], collective=head)
    if lexicon.is_depicted_quantifier(name):
        return ChunkObject(head, depicted=True)
    return None


def noun_phrase(head: Token, start: Token, depicted: bool = False) -> NP | None:
    """The noun phrase from `start` (its first word) to the noun `head`: the object's singular name,
    its number, its modifiers (`modifier_attributes`), and whether a finite verb agrees with it ("Two
    dogs run": an edit must not change its number). None for a noun that names no object ("a view of
    ..."), or a quantifier unless `depicted`."""
    name, plural = _noun_name(head)
    if not name or lexicon.is_not_object(name) or (lexicon.is_quantifier(name) and not depicted):
        return None
    subj = head.dep_ in ("nsubj", "nsubjpass") and head.head.pos_ in ("VERB", "AUX") and \
        head.head.tag_ in ("VBZ", "VBP", "VBD")
    end = head.idx + len(head.text)
    return NP(name, plural, (head.idx, end), (start.idx, end), modifier_attributes(head, name),
              subject_of_verb=subj, agree=[] if plural else agreeing_verbs(head))


_FINITE_TAGS = frozenset({"VBZ", "VBP", "VBD", "MD"})
_PLURAL_OF = {"is": "are", "was": "were", "has": "have", "does": "do"}


def agreeing_verbs(head: Token) -> list[tuple[Span, str]]:
    """The finite verbs a singular subject `head` governs, each with its plural form: what must change
    when an object joins the subject ("A plane is flying" -> "A plane and a bird are flying", "A camera
    sits and waits" -> "... sit and wait"). The auxiliary where there is one, else the verb and the
    verbs conjoined to it. Empty: not a subject, a verb whose plural is not known, or a passive ("A pastry is
    torn in half": nothing joins what is done to the subject)."""
    if head.dep_ != "nsubj":
        return []
    out = []
    verbs = [head.head, *(c for c in head.head.children if c.dep_ == "conj" and c.pos_ in ("VERB", "AUX")
                          and not any(g.dep_ in ("nsubj", "nsubjpass") for g in c.children))]
    for v in verbs:
        aux = [c for c in v.children if c.dep_ in ("aux", "auxpass") and c.i < v.i]
        word = (aux or [v])[0]
        if word.tag_ not in _FINITE_TAGS:
            continue
        low = word.lower_
        plural = _PLURAL_OF.get(low) or (word.lemma_.lower() if word.tag_ == "VBZ" else low)
        if word.tag_ == "VBZ" and low not in _PLURAL_OF and not plural.isalpha():
            return []
        out.append(((word.idx, word.idx + len(word.text)), plural))
    return out


def modifier_attributes(head: Token, name: str) -> list[tuple[str, Span]]:
    """The attributes before a noun: adjectives, noun compounds and numbers with their conjuncts and the
    words hyphenated to them ("A half-eaten red and white donut" -> half-eaten, red, white; "2 dogs" ->
    two), each with its span. A word that repeats the object's name is not its attribute."""
    atts = []
    for t in _att_tokens(head):
        span = _att_span(t)
        a = _att_name(t, span)
        if a and a != name:
            atts.append((a, span))
    return atts


def attach_predicate_adjectives(doc: Doc, objects: Objects) -> Objects:
    """Adjectives after "be" describe its subject: "The dog is black and white" -> black(dog),
    white(dog). The objects again, with those attributes after their noun-phrase ones."""
    extra: dict[int, list[tuple[str, Span]]] = {}
    for tok in doc:
        if tok.dep_ != "acomp" or tok.head.lemma_ != "be":
            continue
        subj = [c for c in tok.head.children if c.dep_ == "nsubj" and c.i in objects.index]
        if not subj:
            continue
        k = objects.index[subj[0].i]
        for t in [tok, *(c for c in tok.children if c.dep_ == "conj")]:
            a = lexicon.clean(t.text)
            if a:
                extra.setdefault(k, []).append((a, (t.idx, t.idx + len(t.text))))
    nps = [replace(np, atts=[*np.atts, *extra[k]]) if k in extra else np for k, np in enumerate(objects.nps)]
    return Objects(nps, objects.index)


# --- which object a phrase is about ----------------------------------------------------------------


def sentence_agent(doc: Doc, objects: Objects) -> int | None:
    """The sentence's subject, when it is one that does things (a person, an animal): "A man is in a
    kitchen making pizzas" -> man. None otherwise ("A plate is on a table")."""
    root_subjects = [c for t in doc if t.dep_ == "ROOT" for c in t.children
                     if c.dep_ in ("nsubj", "nsubjpass") and c.i in objects.index]
    if root_subjects and lexicon.is_agent(objects.nps[objects.index[root_subjects[0].i]].name):
        return objects.index[root_subjects[0].i]
    return None


def subject_of(tok: Token, objects: Objects, agent: int | None) -> int | None:
    """The object a preposition or a verb is about: the noun it hangs on, or its verb's subject, or the
    noun a participle describes ("a dog sitting on a couch" -> the dog), looking past conjuncts,
    adverbs and adjectives (three words up at most). A participle spaCy hangs on a thing in a
    prepositional phrase describes the sentence's `agent`, not the thing: "a man is in a kitchen making
    pizzas" -> making(man, pizza). None: no object we know."""
    index = objects.index
    h = tok
    for _ in range(3):
        if h.i in index:
            return index[h.i]
        if h.pos_ in ("VERB", "AUX"):
            subs = [c for c in h.children if c.dep_ in ("nsubj", "nsubjpass") and c.i in index]
            if subs:
                return index[subs[0].i]
            if h.dep_ in ("acl", "relcl") and h.head.i in index:
                if (agent is not None and h.dep_ == "acl" and h.tag_ == "VBG" and h.head.dep_ == "pobj"
                        and not lexicon.is_agent(objects.nps[index[h.head.i]].name)):
                    return agent
                return index[h.head.i]
        if h.dep_ == "conj" or h.pos_ in ("ADV", "ADJ", "VERB"):
            h = h.head
            continue
        break
    return None


# --- relations ------------------------------------------------------------------------------------


def prepositional_relations(doc: Doc, objects: Objects, agent: int | None) -> list[RelSlot]:
    """Relations stated by prepositional phrases: "A cat laying with a laptop on a table" -> with(cat,
    laptop), laying on(cat, table). None where the attachment is unsure: two phrases the parser ran
    together ("working in the kitchen rolling dough": which noun the phrase names is unsure), or a noun
    in a list tagged as a verb ("a refrigerator, stove and oven with cabinets")."""
    rels = []
    for tok in doc:
        phrase = prep_phrase(tok)
        if phrase is None or phrase.obj.i not in objects.index:
            continue
        if any(_run_together(t) for t in doc[tok.i + 1:phrase.obj.i]):
            continue
        attach = phrase.attach
        if attach.pos_ == "VERB" and attach.dep_ == "conj" and attach.head.pos_ in ("NOUN", "PROPN"):
            continue
        o = objects.index[phrase.obj.i]
        s = prep_subject(phrase, objects, agent)
        if s is None or s == o:
            continue
        wording = prep_wording(phrase)
        p = lexicon.predicate(wording.pred)
        if p:
            rels.append(RelSlot(p, s, o, wording.span, wording.editable))
    return rels


def prep_phrase(tok: Token) -> PrepPhrase | None:
    """A preposition (or a passive's "by") with its object, including the multi-word prepositions spaCy
    splits: "next to a fence" ('next' heads 'to', and the phrase hangs on what 'next' hangs on) and a
    relational noun, "in front of a bar", "on top of a table" (the object is the noun after "of").
    None: `tok` is no preposition with an object."""
    if tok.dep_ not in ("prep", "agent"):
        return None
    pobjs = [c for c in tok.children if c.dep_ == "pobj"]
    if not pobjs:
        return None
    start, words, attach, end, obj = tok, [tok.lower_], tok.head, tok, pobjs[0]
    if tok.head.lower_ == "next" and tok.lower_ == "to":
        start, words, attach = tok.head, ["next", "to"], tok.head.head
    rel_noun = _RELATIONAL_NOUNS.get(obj.lower_)
    if rel_noun:
        of = [c for c in obj.children if c.dep_ == "prep" and c.lower_ == "of"]
        inner = [p for c in of for p in c.children if p.dep_ == "pobj"]
        if of and inner:
            words, end, obj = rel_noun.split(), of[0], inner[0]
    return PrepPhrase(tok, start, words, attach, end, obj)


def prep_subject(phrase: PrepPhrase, objects: Objects, agent: int | None) -> int | None:
    """The object a prepositional phrase places: what it hangs on (`subject_of`: "a man on a beach"),
    except under a verb, where it may place the verb's object:
    - where it goes or is held: "throwing a ball to a batter" -> to(ball, batter), "has a frisbee in his
      hand" -> in(frisbee, hand);
    - where a cook or a cutter puts it: "Person cooking eggs on a black pot" -> on(egg, pot), not the
      person on the pot; without an object ("cooking on a stove") a supporting phrase places nothing;
    - a second supporting phrase under such a verb places the first one's object: "... on a black pot on
      a stove" -> on(pot, stove).
    None: no object we know."""
    index, attach, prep = objects.index, phrase.attach, phrase.prep
    s = subject_of(attach, objects, agent)
    supporting = lexicon.relation_words("supporting")
    placing = attach.pos_ == "VERB" and attach.lemma_.lower() in lexicon.relation_words("placing") \
        and not _passive(attach)
    stacked = _stacked_on(prep, phrase.start, attach, supporting) if placing else None
    if stacked is not None:
        return index.get(stacked)
    moved = [c for c in attach.children if c.dep_ == "dobj" and c.i in index and c.i < prep.i]
    if attach.pos_ in ("VERB", "AUX") and (phrase.words[0] in lexicon.relation_words("directional")
                                           or lexicon.is_holder(objects.nps[index[phrase.obj.i]].name)):
        return index[moved[0].i] if moved else s
    if placing:
        if moved:
            return index[moved[0].i]
        if " ".join(phrase.words) in supporting:
            return None
    return s


def prep_wording(phrase: PrepPhrase) -> Wording:
    """The predicate a prepositional phrase states, and its span: a verb right before the preposition
    joins it ("A dog sitting on a couch" -> sitting on; a passive keeps its participle, "tied to"), and
    then only a gerund may be replaced by an edit; "be" does not ("A donut is on the table" -> on)."""
    pred = " ".join(phrase.words)
    span = (phrase.start.idx, phrase.end.idx + len(phrase.end.text))
    verb = phrase.attach
    if verb.pos_ == "VERB" and verb.i + 1 == phrase.start.i and verb.lemma_ != "be":
        return Wording(f"{_verb_predicate(verb)} {pred}", (verb.idx, span[1]), verb.tag_ == "VBG")
    return Wording(pred, span, True)


def verb_object_relations(doc: Doc, objects: Objects, agent: int | None) -> list[RelSlot]:
    """Relations stated by a verb and its direct object: "A man riding a horse" -> riding(man, horse),
    "A man has a frisbee" -> has(man, frisbee). Not "be"."""
    rels = []
    for tok in doc:
        if tok.pos_ != "VERB" or tok.lemma_ == "be":
            continue
        objs = [c for c in tok.children if c.dep_ == "dobj" and c.i in objects.index]
        if not objs:
            continue
        o = objects.index[objs[0].i]
        s = subject_of(tok, objects, agent)
        if s is None or s == o:
            continue
        wording = verb_wording(tok, objs[0])
        p = lexicon.predicate(wording.pred)
        if p:
            rels.append(RelSlot(p, s, o, wording.span, editable=wording.editable))
    return rels


def verb_wording(verb: Token, obj: Token) -> Wording:
    """The predicate a verb states of its direct object `obj`, and its span. "have" reads "has". A
    phrasal verb keeps its particle: "flying over sand" is not "flying sand", "A dog picking up a
    frisbee" not "picking a frisbee" (the parser sometimes labels the particle a preposition without an
    object, before the verb's object). Split from the verb ("picking a frisbee up"), the two are not one
    span an edit could replace."""
    span = (verb.idx, verb.idx + len(verb.text))
    if verb.lemma_.lower() == "have":
        return Wording("has", span, False)
    pred, editable = _verb_predicate(verb), verb.tag_ == "VBG"
    prt = next((c for c in verb.children if c.dep_ == "prt" or (
        c.dep_ == "prep" and c.i < obj.i and not any(g.dep_ == "pobj" for g in c.children))), None)
    if prt is None:
        return Wording(pred, span, editable)
    if prt.i == verb.i + 1:
        return Wording(f"{pred} {prt.lower_}", (verb.idx, prt.idx + len(prt.text)), editable)
    return Wording(f"{pred} {prt.lower_}", span, False)
