"""Human captions -> `Caption` (noun phrases, attribute and relation spans) with a spaCy parse.

Objects are noun-chunk heads ("a group of people" -> people); attributes come from amod, compound,
nummod and acomp (+ their conjuncts); relations from subject-verb-object and noun/verb-preposition-
object, including multi-word prepositions ("next to", "in front of", "on top of").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from kgaug import lexicon
from kgaug.captions import NP, Caption, RelSlot

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


def _noun_name(tok) -> tuple[str, bool]:
    plural = tok.tag_ in ("NNS", "NNPS")
    lemma = lexicon.clean(tok.lemma_ or tok.text)
    if not lemma:
        return "", plural
    if lemma == lexicon.clean(tok.text) and plural:
        lemma = lexicon.singular(lemma)[0]
    return lemma, plural


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


def to_caption(doc) -> Caption:
    text = doc.text
    nps: list[NP] = []
    index: dict[int, int] = {}  # token index of a head -> NP index

    def add_np(head, start_tok, depicted: bool = False) -> None:
        if head.i in index:
            return
        name, plural = _noun_name(head)
        if not name or lexicon.is_not_object(name) or (lexicon.is_quantifier(name) and not depicted):
            return
        atts = []
        for t in _att_tokens(head):
            span = _att_span(t)
            a = _att_name(t, span)
            if a and a != name:
                atts.append((a, span))
        subj = head.dep_ in ("nsubj", "nsubjpass") and head.head.pos_ in ("VERB", "AUX") and \
            head.head.tag_ in ("VBZ", "VBP", "VBD")
        nps.append(NP(name, plural, (head.idx, head.idx + len(head.text)),
                      (start_tok.idx, head.idx + len(head.text)), atts, subject_of_verb=subj))
        index[head.i] = len(nps) - 1

    for chunk in doc.noun_chunks:
        head = chunk.root
        if head.pos_ not in ("NOUN", "PROPN"):
            continue
        name = lexicon.clean(head.lemma_)
        if lexicon.is_quantifier(name):
            inner = [p for c in head.children if c.dep_ == "prep" and c.lower_ == "of"
                     for p in c.children if p.dep_ == "pobj" and p.pos_ in ("NOUN", "PROPN")]
            if inner:
                add_np(inner[0], chunk[0])
                if inner[0].i in index:  # verbs attached to "group" belong to the people
                    index.setdefault(head.i, index[inner[0].i])
                continue
            if not lexicon.is_depicted_quantifier(name):
                continue
            add_np(head, chunk[0], depicted=True)  # 'a plate with a donut': the plate is there
            continue
        add_np(head, chunk[0])

    # acomp: "the dog is black"
    for tok in doc:
        if tok.dep_ == "acomp" and tok.head.lemma_ == "be":
            subj = [c for c in tok.head.children if c.dep_ == "nsubj" and c.i in index]
            if subj:
                for t in [tok, *(c for c in tok.children if c.dep_ == "conj")]:
                    a = lexicon.clean(t.text)
                    if a:
                        nps[index[subj[0].i]].atts.append((a, (t.idx, t.idx + len(t.text))))

    rels: list[RelSlot] = []
    root_subjects = [c for t in doc if t.dep_ == "ROOT" for c in t.children
                     if c.dep_ in ("nsubj", "nsubjpass") and c.i in index]
    agent = index[root_subjects[0].i] if root_subjects and lexicon.is_agent(nps[index[root_subjects[0].i]].name) \
        else None  # the sentence's subject, when it is one that does things

    def subject_of(tok):
        """The NP a preposition or verb attaches to: a noun, or the subject of its verb. A participle
        spaCy hangs on a thing in a prepositional phrase ('a man is in a kitchen making pizzas')
        describes the sentence's agent, not the thing."""
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
                            and not lexicon.is_agent(nps[index[h.head.i]].name)):
                        return agent
                    return index[h.head.i]
            if h.dep_ == "conj" or h.pos_ in ("ADV", "ADJ", "VERB"):
                h = h.head
                continue
            break
        return None

    for tok in doc:
        if tok.dep_ != "prep" and not (tok.dep_ == "agent"):
            continue
        pobjs = [c for c in tok.children if c.dep_ == "pobj"]
        if not pobjs:
            continue
        pobj = pobjs[0]
        start, pred_words = tok, [tok.lower_]
        if tok.head.lower_ == "next" and tok.lower_ == "to":  # "next to": 'next' heads 'to'
            start, pred_words = tok.head, ["next", "to"]
            attach = tok.head.head
        else:
            attach = tok.head
        end_tok = tok
        rel_noun = _RELATIONAL_NOUNS.get(pobj.lower_)
        if rel_noun:
            of = [c for c in pobj.children if c.dep_ == "prep" and c.lower_ == "of"]
            inner = [p for c in of for p in c.children if p.dep_ == "pobj"]
            if of and inner:
                pred_words, end_tok, pobj = rel_noun.split(), of[0], inner[0]
        if pobj.i not in index:
            continue
        if any(_run_together(t) for t in doc[tok.i + 1:pobj.i]):
            continue  # "working in the kitchen rolling dough": which noun the phrase names is unsure
        if attach.pos_ == "VERB" and attach.dep_ == "conj" and attach.head.pos_ in ("NOUN", "PROPN"):
            continue  # a noun in a list tagged as a verb ("a refrigerator, stove and oven with cabinets")
        s = subject_of(attach)
        supporting = lexicon.relation_words("supporting")
        placing = attach.pos_ == "VERB" and attach.lemma_.lower() in lexicon.relation_words("placing") \
            and not _passive(attach)
        stacked = _stacked_on(tok, start, attach, supporting) if placing else None
        if stacked is not None:
            # "cooking eggs on a black pot on a stove": the second phrase places the pot, not the cook
            if stacked not in index:
                continue
            s = index[stacked]
        elif attach.pos_ in ("VERB", "AUX") and (pred_words[0] in lexicon.relation_words("directional")
                                                 or lexicon.is_holder(nps[index[pobj.i]].name)):
            # Where the verb's object goes or is held: "throwing a ball to a batter" is to(ball,batter),
            # "has a frisbee in his hand" in(frisbee,hand).
            moved = [c for c in attach.children if c.dep_ == "dobj" and c.i in index and c.i < tok.i]
            if moved:
                s = index[moved[0].i]
        elif placing:
            # Where a cook or a cutter puts the object: "Person cooking eggs on a black pot" is on(egg,pot);
            # the person is not on the pot. Without an object, "cooking on a stove" places nothing we know.
            moved = [c for c in attach.children if c.dep_ == "dobj" and c.i in index and c.i < tok.i]
            if moved:
                s = index[moved[0].i]
            elif " ".join(pred_words) in supporting:
                continue
        if s is None or s == index[pobj.i]:
            continue
        pred = " ".join(pred_words)
        span = (start.idx, end_tok.idx + len(end_tok.text))
        verb = attach if attach.pos_ == "VERB" and attach.i + 1 == start.i else None
        if verb is not None and verb.lemma_ != "be":
            pred = f"{_verb_predicate(verb)} {pred}"
            span = (verb.idx, span[1])
            editable = verb.tag_ == "VBG"
        else:
            editable = True
        p = lexicon.predicate(pred)
        if p:
            rels.append(RelSlot(p, s, index[pobj.i], span, editable))

    for tok in doc:
        if tok.pos_ != "VERB" or tok.lemma_ == "be":
            continue
        objs = [c for c in tok.children if c.dep_ == "dobj" and c.i in index]
        if not objs:
            continue
        s = subject_of(tok)
        if s is None or s == index[objs[0].i]:
            continue
        lemma = tok.lemma_.lower()
        span = (tok.idx, tok.idx + len(tok.text))
        editable = tok.tag_ == "VBG" and lemma != "have"
        if lemma == "have":
            pred = "has"
        else:
            pred = _verb_predicate(tok)
            # A phrasal verb keeps its particle: "flying over sand" is not "flying sand", "picking up a
            # frisbee" not "picking a frisbee". (The parser sometimes labels it a preposition without an
            # object, before the verb's object.) Split from the verb ("picking a frisbee up"), the two are
            # not one span an edit could replace.
            prt = next((c for c in tok.children if c.dep_ == "prt" or (
                c.dep_ == "prep" and c.i < objs[0].i and not any(g.dep_ == "pobj" for g in c.children))), None)
            if prt is not None:
                pred = f"{pred} {prt.lower_}"
                if prt.i == tok.i + 1:
                    span = (tok.idx, prt.idx + len(prt.text))
                else:
                    editable = False
        p = lexicon.predicate(pred)
        if p:
            rels.append(RelSlot(p, s, index[objs[0].i], span, editable=editable))
    return Caption(text, nps, rels, "human")
