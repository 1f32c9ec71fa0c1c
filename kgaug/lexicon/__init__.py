"""The curated word lists (data files next to this module) and the English inflection that uses them.

Everything here is pure: loading the JSON files once, and string functions for articles, number and
predicate normalisation. WordNet-backed lemmatisation lives in `kgaug.wordnet`.
"""

from __future__ import annotations

import json
import re
from functools import cache, lru_cache
from importlib import resources
from typing import Any


@cache
def load(name: str) -> dict[str, Any]:
    return json.loads(resources.files(__package__).joinpath(f"{name}.json").read_text())


@cache
def attribute_category() -> dict[str, str]:
    out: dict[str, str] = {}
    for cat, words in load("attributes")["categories"].items():
        for w in words:
            out.setdefault(w, cat)
    return out


@cache
def attribute_same() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for group in load("attributes")["same"]:
        g = frozenset(group)
        for w in group:
            out[w] = out.get(w, frozenset()) | g
    return out


@cache
def attribute_antonyms() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for a, b in load("attributes")["antonyms"]:
        out.setdefault(a, []).append(b)
        out.setdefault(b, []).append(a)
    return {k: tuple(v) for k, v in out.items()}


@cache
def attribute_near() -> dict[str, frozenset[str]]:
    """Colours too close to contradict each other in a photo (attributes.json `near`: grey / black)."""
    out: dict[str, set[str]] = {}
    for a, b in load("attributes")["near"]:
        out.setdefault(a, set()).add(b)
        out.setdefault(b, set()).add(a)
    return {k: frozenset(v) for k, v in out.items()}


def contradicts(a: str, b: str) -> bool:
    """May `b` stand for `a` as a contradiction: neither the same word, a synonym ('same') nor near it?"""
    return a != b and b not in attribute_same().get(a, ()) and b not in attribute_near().get(a, ())


@cache
def replaceable_categories() -> frozenset[str]:
    """The attribute categories replace_att edits (attributes.json `replaceable`)."""
    return frozenset(load("attributes")["replaceable"])


@cache
def not_prenominal() -> frozenset[str]:
    return frozenset(load("attributes")["not_prenominal"])


@cache
def not_predicative() -> frozenset[str]:
    return frozenset(load("attributes")["not_predicative"])


@lru_cache(maxsize=1 << 16)
def predicative(a: str) -> bool:
    """An attribute that reads after 'is' ("the dog is black"), by the lexicon alone: no count ("the
    people are four"), nothing in `not_predicative` ("the people are many"), no phrase."""
    category = attribute_category().get(a)
    if category is not None:
        return category != "count"
    return " " not in a and a not in not_predicative() and not a[:1].isdigit()


@cache
def relation_antonyms() -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for a, b in load("relations")["antonyms"]:
        out.setdefault(a, []).append(b)
        out.setdefault(b, []).append(a)
    return {k: tuple(v) for k, v in out.items()}


@cache
def predicate_same() -> dict[str, frozenset[str]]:
    out: dict[str, frozenset[str]] = {}
    for group in load("relations")["same"]:
        for w in group:
            out[w] = out.get(w, frozenset()) | frozenset(group)
    return out


@cache
def postures() -> dict[str, tuple[str, ...]]:
    """Posture / gait verb -> the first words of the other posture groups (relations.json `postures`):
    what may replace it ('sitting' -> 'standing', 'lying', ...; never 'seated' for 'sitting')."""
    groups = load("relations")["postures"]
    return {w: tuple(h[0] for h in groups if h is not g) for g in groups for w in g}


@cache
def _posture_pairs() -> dict[str, frozenset[tuple[str, str]]]:
    pairs = load("relations")["posture_contrasts"]
    return {k: frozenset((a, b) for a, b in v) | frozenset((b, a) for a, b in v) for k, v in pairs.items()}


def posture_head(word: str) -> str:
    """The first word of the `postures` group a posture word is in ('laying' -> 'lying')."""
    for g in load("relations")["postures"]:
        if word in g:
            return g[0]
    return word


def posture_contrast(a: str, b: str, person: bool) -> bool:
    """Do two posture words (first words of relations.json `postures` groups) tell one subject's posture
    apart in a photo (`posture_contrasts`): sitting / standing for a person, not for a perched bird;
    never walking / standing (a step in progress)?"""
    return (a, b) in _posture_pairs()["person" if person else "animal"]


@cache
def subjective_categories() -> frozenset[str]:
    """Attribute categories judged by eye (attributes.json `subjective`: size)."""
    return frozenset(load("attributes")["subjective"])


@cache
def _animacy_words() -> tuple[frozenset[str], frozenset[str]]:
    d = load("attributes")
    return frozenset(d["animate_only"]), frozenset(d["inanimate_only"])


@cache
def _named_against() -> dict[str, frozenset[str]]:
    return {a: frozenset(ns) for a, ns in load("attributes")["named_against"].items()}


def named_against(attribute: str, noun: str) -> bool:
    """Does the noun's own meaning contradict the attribute ('an old boy'; attributes.json `named_against`)?"""
    return noun in _named_against().get(attribute, ())


def fits_animacy(attribute: str, animate: bool) -> bool:
    """May this attribute describe a person or an animal (`animate`), or a thing? Not 'a young monitor',
    not 'a new man' (attributes.json `animate_only`, `inanimate_only`)."""
    only_animate, only_things = _animacy_words()
    return attribute not in (only_things if animate else only_animate)


@cache
def relation_words(key: str) -> frozenset[str]:
    """A word list of relations.json as a set: 'symmetric', 'spatial', 'directional', 'locative',
    'irreversible', 'particles' (of phrasal verbs: "up" in "picking up")."""
    return frozenset(load("relations")[key])


_NON_WORD = re.compile(r"[^a-z0-9' \-]+")
_SPACES = re.compile(r"\s+")


@lru_cache(maxsize=1 << 18)
def clean(text: str) -> str:
    """Lower-case, ASCII-ish, single-spaced; drops the characters fact strings reserve: ( ) ,"""
    return _SPACES.sub(" ", _NON_WORD.sub(" ", text.lower().replace("_", " "))).strip()


@lru_cache(maxsize=65536)
def predicate(raw: str) -> str:
    """Canonical predicate: case, whitespace, leading auxiliaries, trailing articles, aliases."""
    p = clean(raw)
    for _ in range(2):
        p = load("relations")["aliases"].get(p, p)
        words = p.split()
        while len(words) > 1 and words[0] in {"is", "are", "was", "were", "be", "being"}:
            words = words[1:]
        while len(words) > 1 and words[-1] in {"a", "an", "the", "its", "his", "her", "their"}:
            words = words[:-1]
        p = " ".join(words)
    if p in load("relations")["junk"]:
        return ""
    return p


@cache
def _nouns() -> dict[str, Any]:
    d = load("nouns")
    return {
        "irregular": d["irregular_plurals"],
        "irregular_rev": {v: k for k, v in d["irregular_plurals"].items() if k != v},
        "plural_only": frozenset(d["plural_only"]),
        "uncountable": frozenset(d["uncountable"]),
        "definite": frozenset(d["definite"]),
        "an": frozenset(d["an_exceptions"]["an"]),
        "a": frozenset(d["an_exceptions"]["a"]),
        "quantifiers": frozenset(d["quantifiers"]),
        "depicted": frozenset(d["depicted_quantifiers"]),
        "background": frozenset(d["background"]),
        "agents": frozenset(d["agents"]),
        "holders": frozenset(d["holders"]),
        "not_objects": frozenset(d["not_objects"]),
        "salient": frozenset(d["salient"]),
    }


def is_quantifier(word: str) -> bool:
    return word in _nouns()["quantifiers"]


def is_holder(word: str) -> bool:
    """A body part a verb's object is held in ('a frisbee in his hand'; nouns.json `holders`)."""
    return word in _nouns()["holders"]


def is_agent(word: str) -> bool:
    """A noun that does things: a person, a role of one, an animal (nouns.json `agents`)."""
    return word in _nouns()["agents"]


def is_salient(word: str) -> bool:
    """A person or an animal that captions name whenever a picture shows one (nouns.json `salient`)."""
    return word in _nouns()["salient"]


def is_background(word: str) -> bool:
    """A noun most pictures show whether or not a caption names it (add_obj never adds one)."""
    return word in _nouns()["background"]


@cache
def _near_synonyms() -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for group in load("nouns")["near_synonyms"]:
        for w in group:
            out.setdefault(w, set()).update(group)
    return {k: frozenset(v) for k, v in out.items()}


def near_synonym(a: str, b: str) -> bool:
    """One picture may fit both names (nouns.json `near_synonyms`: crowd / audience, bus / vehicle)."""
    return b in _near_synonyms().get(a, ())


@cache
def _person_groups() -> dict[str, int]:
    return {w: i for i, group in enumerate(load("nouns")["person_contrasts"]) for w in group}


def person_contrast(a: str, b: str) -> bool:
    """Two people's names that exclude each other (nouns.json `person_contrasts`: a man, a woman)."""
    groups = _person_groups()
    return a in groups and b in groups and groups[a] != groups[b]


@cache
def coreferent_groups() -> tuple[tuple[str, ...], ...]:
    """Names an image's captions may use for one entity (nouns.json `coreferent`), most specific first."""
    return tuple(tuple(g) for g in load("nouns")["coreferent"])


def is_depicted_quantifier(word: str) -> bool:
    """A quantifier noun that names a thing of its own when no 'of' follows ('a plate with a donut')."""
    return word in _nouns()["depicted"]


@lru_cache(maxsize=1 << 16)
def is_not_object(word: str) -> bool:
    return word in _nouns()["not_objects"]


@lru_cache(maxsize=65536)
def singular(noun: str) -> tuple[str, bool]:
    """(singular form, was plural) of a noun phrase's last word, by rule and the lexicon."""
    *head, last = noun.split(" ") if noun else [""]
    n = _nouns()
    if last in n["plural_only"]:
        return noun, True
    if last in n["irregular"]:
        s, plural = n["irregular"][last], last != n["irregular"][last] or last in n["irregular_rev"]
    elif len(last) > 4 and last.endswith("ies"):
        s, plural = last[:-3] + "y", True
    elif len(last) > 4 and last.endswith(("ches", "shes", "sses", "xes", "zzes")):
        s, plural = last[:-2], True
    elif len(last) > 3 and last.endswith("s") and not last.endswith(("ss", "us", "is", "os", "'s")):
        s, plural = last[:-1], True
    else:
        s, plural = last, False
    return " ".join([*head, s]), plural


@lru_cache(maxsize=65536)
def plural(noun: str) -> str:
    *head, last = noun.split(" ")
    n = _nouns()
    if last in n["plural_only"] or last in n["uncountable"]:
        p = last
    elif last in n["irregular_rev"]:
        p = n["irregular_rev"][last]
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        p = last[:-1] + "ies"
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        p = last + "es"
    else:
        p = last + "s"
    return " ".join([*head, p])


def inflect_like(noun: str, plural_form: bool) -> str:
    return plural(noun) if plural_form else noun


@lru_cache(maxsize=1 << 16)
def article(word: str) -> str:
    """'a' or 'an' for the word that follows the article."""
    w = word.lower().split(" ")[0] if word else ""
    n = _nouns()
    if w in n["an"] or any(w.startswith(x) for x in n["an"]):
        return "an"
    if w in n["a"] or w.startswith(("uni", "use", "eu", "one")):
        return "a"
    return "an" if w[:1] in set("aeiou") else "a"


def determiner(name: str, is_plural: bool, first_word: str) -> str:
    """The determiner a noun phrase for `name` starts with ('' for bare plurals and mass nouns)."""
    n = _nouns()
    last = name.split(" ")[-1]
    if last in n["definite"]:
        return "the"
    if first_word.split(" ")[0] in _counts() or name.split(" ")[0] in _counts():
        return ""  # "two dogs", "one person": the number is the determiner
    if is_plural or last in n["uncountable"] or last in n["plural_only"]:
        return ""
    return article(first_word)


@cache
def _counts() -> frozenset[str]:
    return frozenset(load("attributes")["categories"]["count"])


# An a/an at a word start and the word after it. The start test is a lookbehind after the [Aa], not a
# leading `\b`: a pattern that starts with a character set lets the engine skip to the next a/A instead
# of trying every position (findall ~35 % fewer instructions on captions). The same matches: [Aa] is a
# word character, so `\b` before it means exactly "no word character before it".
_ARTICLE = re.compile(r"([Aa](?<!\w[Aa])n?) (?=([A-Za-z]+))")


def _article_repl(m: re.Match[str]) -> str:
    new = article(m.group(2))
    if m.group(1)[0] == "A":
        new = new.capitalize()
    return new + " "


def fix_articles(text: str) -> str:
    """Re-inflect every a/an for the word that now follows it (after an edit changed that word)."""
    # Most texts need no change: finding that out costs no match objects and no new string.
    for art, word in _ARTICLE.findall(text):
        if article(word) != art.lower():
            return _ARTICLE.sub(_article_repl, text)
    return text


_VOWELS = set("aeiou")


def gerund(verb: str) -> str:
    """ride -> riding, sit -> sitting, hold -> holding (base form in)."""
    if verb.endswith("ie"):
        return verb[:-2] + "ying"
    if verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        return verb[:-1] + "ing"
    if (len(verb) >= 3 and verb[-1] not in _VOWELS | {"w", "x", "y"} and verb[-2] in _VOWELS
            and verb[-3] not in _VOWELS and len(verb) <= 4):
        return verb + verb[-1] + "ing"
    return verb + "ing"


@lru_cache(maxsize=1 << 16)
def display_predicate(pred: str) -> str:
    """How a canonical predicate reads between two noun phrases ('has' -> 'with')."""
    return load("relations")["display"].get(pred, pred)


@cache
def sensitive_words() -> dict[str, tuple[tuple[str, str], ...]]:
    """word or phrase -> ((tag, value), ...)."""
    out: dict[str, list[tuple[str, str]]] = {}
    for tag, values in load("sensitive").items():
        if tag.startswith("_"):
            continue
        for value, words in values.items():
            for w in words:
                out.setdefault(w, []).append((tag, value))
    return {k: tuple(v) for k, v in out.items()}


@lru_cache(maxsize=1 << 16)
def _text_tags(text: str) -> tuple[tuple[str, str], ...]:
    words = sensitive_words()
    toks = clean(text).split(" ")
    grams = set(toks) | {" ".join(toks[i:i + 2]) for i in range(len(toks) - 1)}
    return tuple(tv for g in grams for tv in words.get(g, ()))


def sensitive_tags(texts: list[str]) -> dict[str, str]:
    """Tags found in `texts`; a tag seen with two different values becomes 'mixed'."""
    found: dict[str, set[str]] = {}
    for t in texts:
        for tag, value in _text_tags(t):
            found.setdefault(tag, set()).add(value)
    return {tag: (next(iter(v)) if len(v) == 1 else "mixed") for tag, v in sorted(found.items())}
