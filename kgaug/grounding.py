"""Whether a free text (an LLM rewrite or a rephrased negative) states what a set of graph facts says
and nothing else: pure functions over words, no model.

The check is conservative on purpose (a rejected good rewrite costs one pseudo-caption; an accepted
invented one teaches the model something false). A text is read against a `Grounding` (the facts'
words: object names with their surface names and synonyms, attribute words, relation phrases) and a
`Vocab` (every object, attribute and relation word kgaug knows: the lexicon plus the corpus's counts):
- every object it was given must be named (singular or plural, a surface name or a synonym);
- no word of the vocabulary may appear that the facts do not have ("invents an object / attribute /
  relation"); a relation word counts only inside one of the facts' relation phrases;
- each attribute word must belong to the object it describes (the next object named within its noun
  phrase, else the one named before it), and each relation phrase must have its fact's subject named
  before it and its object after it (either way round for a symmetric predicate);
- no negation ("no", "without").
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import NamedTuple

from kgaug import lexicon
from kgaug.scene_graph import SceneGraph, parse_fact

# Reasons (report.json counts rejections by these words).
DROPS_OBJECT = "drops an object"
INVENTS_OBJECT = "invents an object"
INVENTS_ATTRIBUTE = "invents an attribute"
INVENTS_RELATION = "invents a relation"
WRONG_ATTRIBUTE = "attribute on the wrong object"
WRONG_RELATION = "relation between the wrong objects"
NEGATION = "negation"
LOSES_FALSE_FACT = "loses the false fact"
LOSES_FACT = "loses a fact of the negative"

Synonyms = Callable[[str, str], Iterable[str]]  # (word, "n" | "a") -> synonyms (e.g. WordNet.synonyms)
_SPLIT = re.compile(r"[ \-]+")
ATT_WINDOW = 3  # an attribute describes an object named at most this many words after it


@cache
def _words() -> dict:
    return lexicon.load("rewrite_prompts")


def neutral() -> frozenset[str]:
    return frozenset(_words()["neutral"])


def negation() -> frozenset[str]:
    return frozenset(_words()["negation"])


def tokens(text: str) -> list[str]:
    out = []
    for t in _SPLIT.split(lexicon.clean(text)):
        t = t[:-2] if t.endswith("'s") else t.strip("'")
        if t:
            out.append(t)
    return out


def stem(word: str) -> str:
    """A crude stem for verb and adjective forms (sits / sitting / sit -> sit; rides / riding -> rid)."""
    for suffix in ("ing", "ed", "es", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            base = word[:-len(suffix)]
            if suffix in ("ing", "ed") and base[-1] == base[-2] and base[-1] not in "ls":
                base = base[:-1]
            return base[:-1] if base.endswith("e") and len(base) > 3 else base
    return word[:-1] if word.endswith("e") and len(word) > 3 else word


def _stems(phrase: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in tokens(phrase))


def noun_key(phrase: str) -> str:
    return lexicon.singular(" ".join(tokens(phrase)))[0]


@dataclass
class Vocab:
    """Every word kgaug knows as an object (singular), attribute or relation word (stems)."""

    objects: frozenset[str]
    attributes: frozenset[str]
    relations: frozenset[str]

    @classmethod
    def build(cls, objects: Iterable[str] = (), attributes: Iterable[str] = (), predicates: Iterable[str] = ()) -> Vocab:
        """The lexicon's words plus `objects`, `attributes`, `predicates` (e.g. the KG's corpus counts)."""
        skip = neutral() | negation()
        nouns = lexicon.load("nouns")
        objs = {noun_key(o) for o in [*objects, *nouns["agents"], *nouns["background"], *nouns["holders"]]}
        objs = {o for o in objs if o and len(o) > 1 and o not in skip and not lexicon.is_not_object(o)}
        atts = set(lexicon.attribute_category()) | {a for a in attributes}
        att_stems = {stem(w) for a in atts for w in tokens(a) if w not in skip and len(w) > 1}
        rels = lexicon.load("relations")
        preds = [*predicates, *rels["spatial"], *rels["verbs"], *rels["aliases"], *rels["aliases"].values(),
                 *(p for g in rels["same"] for p in g), *(p for pair in rels["antonyms"] for p in pair)]
        rel_stems = {stem(w) for p in preds for w in tokens(p) if w not in skip and len(w) > 1}
        return cls(frozenset(objs), frozenset(att_stems), frozenset(rel_stems))


@dataclass
class Grounding:
    """The words of a set of facts: what a text checked against them may say."""

    objects: dict[str, str] = field(default_factory=dict)  # singular surface form / synonym -> canonical name
    attributes: dict[str, set[str]] = field(default_factory=dict)  # word stem -> attributes it may state
    att_facts: set[tuple[str, str]] = field(default_factory=set)  # (attribute, object)
    phrases: dict[tuple[str, ...], set[str]] = field(default_factory=dict)  # stems -> predicates it states
    rel_facts: set[tuple[str, str, str]] = field(default_factory=set)  # (predicate, subject, object)

    def names(self) -> set[str]:
        return set(self.objects.values())


def _phrases_for(pred: str) -> set[str]:
    """Ways to say a predicate: itself, its aliases, same-group phrases that add no verb, and for a
    verb + preposition ("sitting on") the verb or the preposition alone."""
    rels = lexicon.load("relations")
    out = {pred, lexicon.display_predicate(pred)} | {a for a, p in rels["aliases"].items() if p == pred}
    verb = {w for w in pred.split() if w.endswith("ing")}
    out |= {p for p in lexicon.predicate_same().get(pred, ()) if {w for w in p.split() if w.endswith("ing")} <= verb}
    words = pred.split()
    if len(words) > 1 and words[0].endswith("ing"):
        out |= {words[0], " ".join(words[1:])}
    return {p for p in out if p and p not in neutral()}


def ground(facts: Iterable[str], names: dict[str, Iterable[str]] | None = None,
           synonyms: Synonyms | None = None) -> Grounding:
    """A `Grounding` of fact strings ("dog", "black(dog)", "on(dog,couch)"); `names`: more surface names
    of an object (a graph's `Obj.names`); `synonyms`: e.g. WordNet's, for object names and attributes."""
    g = Grounding()
    objects: set[str] = set()
    for fact in facts:
        head, args = parse_fact(fact)
        objects.update(args)
        if not head:
            continue
        if len(args) == 1:
            g.att_facts.add((head, args[0]))
            for a in {head, *(lexicon.attribute_same().get(head, ())), *(synonyms(head, "a") if synonyms else ())}:
                for w in tokens(a):
                    if w not in neutral():
                        g.attributes.setdefault(stem(w), set()).add(head)
        else:
            g.rel_facts.add((head, args[0], args[1]))
            for p in _phrases_for(head):
                if _stems(p):
                    g.phrases.setdefault(_stems(p), set()).add(head)
    for o in objects:
        for n in {o, *((names or {}).get(o, ())), *(synonyms(o, "n") if synonyms else ())}:
            key = noun_key(n)
            if key and key not in neutral():
                g.objects.setdefault(key, o)
    return g


def graph_facts(graph: SceneGraph) -> tuple[list[str], dict[str, list[str]]]:
    """A scene graph's facts and each object's surface names."""
    names: dict[str, list[str]] = {}
    for o in graph.objects:
        names.setdefault(o.name, []).extend(o.names)
    return sorted(graph.facts()), names


class Mention(NamedTuple):
    """An object named in a text: tokens start..end name it."""

    name: str  # the fact's object name
    start: int
    end: int


class AttWord(NamedTuple):
    """An attribute word of a text."""

    atts: set[str]  # the attributes it may state
    pos: int  # its token


class RelPhrase(NamedTuple):
    """A relation phrase of a text: tokens start..end state one of `preds`."""

    preds: set[str]
    start: int
    end: int


class Problem(NamedTuple):
    """Why a text is not grounded: a reason and the word (or attribute, predicate) it is about."""

    reason: str  # one of the reasons above (DROPS_OBJECT, ...)
    word: str  # what it is about


@dataclass
class Reading:
    mentions: list[Mention]
    attributes: list[AttWord]
    relations: list[RelPhrase]
    problems: list[Problem]


def read(text: str, g: Grounding, vocab: Vocab) -> Reading:
    """What `text` says in the words of `g`, by token, each word read once, in passes: the facts'
    objects (longest names first), their relation phrases (longest first), their attribute words and
    negations; then the vocabulary's objects, attributes and relation words the facts do not have."""
    t = tokens(text)
    s = [stem(w) for w in t]
    used = [False] * len(t)
    r = Reading([], [], [], [])

    def free(i: int, n: int) -> bool:
        return i + n <= len(t) and not any(used[i:i + n])

    for n in (3, 2, 1):  # the facts' objects, longest names first
        for i in range(len(t)):
            if free(i, n) and (name := g.objects.get(lexicon.singular(" ".join(t[i:i + n]))[0])) is not None:
                r.mentions.append(Mention(name, i, i + n))
                used[i:i + n] = [True] * n
    for phrase, preds in sorted(g.phrases.items(), key=lambda kv: (-len(kv[0]), kv[0])):
        n = len(phrase)
        for i in range(len(t)):
            if free(i, n) and tuple(s[i:i + n]) == phrase:
                r.relations.append(RelPhrase(preds, i, i + n))
                used[i:i + n] = [True] * n
    for i, w in enumerate(t):
        if used[i] or w in neutral():
            continue
        if w in negation():
            r.problems.append(Problem(NEGATION, w))
        elif s[i] in g.attributes:
            r.attributes.append(AttWord(g.attributes[s[i]], i))
            used[i] = True
    for n in (3, 2, 1):  # then what the vocabulary knows and the facts do not say
        for i in range(len(t)):
            if not free(i, n) or (n == 1 and t[i] in neutral() | negation()):
                continue
            key = lexicon.singular(" ".join(t[i:i + n]))[0]
            if key in vocab.objects and key not in neutral():
                r.problems.append(Problem(INVENTS_OBJECT, key))
                used[i:i + n] = [True] * n
    for i, w in enumerate(t):
        if used[i] or w in neutral() or w in negation():
            continue
        if s[i] in vocab.attributes:
            r.problems.append(Problem(INVENTS_ATTRIBUTE, w))
        elif s[i] in vocab.relations:
            r.problems.append(Problem(INVENTS_RELATION, w))
    r.mentions.sort(key=lambda m: m.start)
    r.relations.sort(key=lambda x: x.start)
    return r


def _described(r: Reading, pos: int) -> str | None:
    """The object an attribute word at `pos` describes: the next one named within ATT_WINDOW words
    with no relation phrase between, else the last one named before it."""
    nxt = next((m for m in r.mentions if m.start > pos), None)
    if nxt is not None and nxt.start - pos <= ATT_WINDOW and not any(pos < x.start < nxt.start for x in r.relations):
        return nxt.name
    before = [m for m in r.mentions if m.end <= pos]
    return before[-1].name if before else None


def _relation_holds(r: Reading, preds: set[str], start: int, end: int, facts: set[tuple[str, str, str]]) -> bool:
    before = {m.name for m in r.mentions if m.end <= start}
    after = {m.name for m in r.mentions if m.start >= end}
    symmetric = lexicon.relation_words("symmetric")
    return any(p in preds and ((s in before and o in after) or (p in symmetric and o in before and s in after))
               for p, s, o in facts)


def problems(text: str, g: Grounding, vocab: Vocab, given: Iterable[str] = ()) -> list[Problem]:
    """Why `text` does not state exactly what `g` allows ([]: it is grounded); `given`: objects it must name."""
    r = read(text, g, vocab)
    out = list(r.problems)
    named = {m.name for m in r.mentions}
    out += [Problem(DROPS_OBJECT, o) for o in given if o not in named]
    for atts, pos in r.attributes:
        obj = _described(r, pos)
        if obj is None or not any((a, obj) in g.att_facts for a in atts):
            out.append(Problem(WRONG_ATTRIBUTE, f"{'/'.join(sorted(atts))} on {obj}"))
    for preds, start, end in r.relations:
        if not _relation_holds(r, preds, start, end, g.rel_facts):
            out.append(Problem(WRONG_RELATION, "/".join(sorted(preds))))
    return out


def states(text: str, fact: str, g: Grounding, vocab: Vocab) -> bool:
    """Whether `text` states `fact` (read with the words of `g`, which must include the fact's)."""
    r = read(text, g, vocab)
    head, args = parse_fact(fact)
    if not head:
        return any(m.name == args[0] for m in r.mentions)
    if len(args) == 1:
        return any(head in atts and _described(r, pos) == args[0] for atts, pos in r.attributes)
    return any(_relation_holds(r, preds, s, e, {(head, args[0], args[1])}) for preds, s, e in r.relations)


def extract(text: str, g: Grounding, vocab: Vocab) -> set[str]:
    """The facts `text` states with the words of `g`, however they are bound (a rule-made negative binds
    them wrongly on purpose): each object named, each attribute word on the object it describes, each
    relation phrase between the objects named last before it and first after it."""
    r = read(text, g, vocab)
    out = {m.name for m in r.mentions}
    for atts, pos in r.attributes:
        obj = _described(r, pos)
        if obj is not None:
            out.add(f"{next((a for a in sorted(atts) if (a, obj) in g.att_facts), min(atts))}({obj})")
    for preds, start, end in r.relations:
        before = [m.name for m in r.mentions if m.end <= start]
        after = [m.name for m in r.mentions if m.start >= end]
        if before and after:
            s, o = before[-1], after[0]
            p = next((p for p in sorted(preds) if (p, s, o) in g.rel_facts), min(preds))
            out.add(f"{p}({s},{o})")
    return out


def check_rewrite(text: str, facts: Iterable[str], given: Iterable[str], vocab: Vocab,
                  names: dict[str, Iterable[str]] | None = None, synonyms: Synonyms | None = None) -> str | None:
    """None when `text` names every object of `given` and says nothing `facts` (the image's graph) do
    not; else the first reason."""
    found = problems(text, ground(facts, names, synonyms), vocab, given)
    return found[0].reason if found else None


def check_negative(fluent: str, rule_text: str, false_fact: str, facts: Iterable[str], vocab: Vocab,
                   names: dict[str, Iterable[str]] | None = None) -> str | None:
    """None when `fluent` (a rephrased rule-made negative) states the negative's false fact and every
    other fact the rule text states, and nothing else; `facts`: the image's graph facts (the words the
    rule text may use besides the false fact's). Else the first reason."""
    wide = ground([*facts, false_fact], names)
    own = sorted(extract(rule_text, wide, vocab) | {false_fact})
    g = ground(own, names)
    found = problems(fluent, g, vocab, [f for f in own if "(" not in f])
    if not states(fluent, false_fact, g, vocab):
        return LOSES_FALSE_FACT
    if found:
        return found[0].reason
    return None if all(states(fluent, f, g, vocab) for f in own) else LOSES_FACT
