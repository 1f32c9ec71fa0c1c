"""WordNet look-ups (synonyms, is-a in either direction, co-hyponyms, antonyms), cached per word.

`WordNet(enabled=False)` answers every question with "don't know" so the build runs without the data
(`--no-wordnet`). A missing corpus raises `WordNetMissing` with the install command.
"""

from __future__ import annotations

import os
from functools import lru_cache
from itertools import islice
from typing import Any

INSTALL_HINT = ("WordNet data for nltk is not installed: run `python -m nltk.downloader wordnet` "
                "(or set NLTK_DATA to a folder holding corpora/wordnet), or pass --no-wordnet")


class WordNetMissing(RuntimeError):
    pass


ANCESTOR_DEPTH = 12  # hypernym steps `ancestors` follows


def sense_key(synset) -> tuple[str, int]:
    """(pos, data-file offset): names a synset as its `name()` does, without reading its lemmas."""
    return synset.pos(), synset.offset()


def _key(word: str) -> str:
    return word.replace(" ", "_")


def _ordered(related: list) -> list:
    """nltk returns related synsets/lemmas (hypernyms, hyponyms, antonyms) in the order of a set of
    (pos, offset) pairs, which depends on PYTHONHASHSEED: sort them so output bytes do not."""
    return sorted(related, key=repr)


def load_english_reader():
    """nltk's WordNet reader, found where `nltk.corpus.wordnet` looks (a `corpora/wordnet` folder or
    zip on the nltk data path), without the multilingual (OMW) version map: nltk >= 3.9 builds that
    map on every load by reading `index.sense` twice, about half of the load time, though it is only
    used to read Open Multilingual Wordnet data. kgaug reads English WordNet only; everything else
    (lemma index, exceptions, synsets) is nltk's own code."""
    import warnings

    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    class EnglishWordNetReader(WordNetCorpusReader):
        def map_wn(self, version="wordnet"):
            return None

    root = _english_root()
    reader = _READERS.get(str(root))
    if reader is None:  # loaded once per process and data folder, as nltk.corpus.wordnet is
        with warnings.catch_warnings():  # "multilingual functions are not available": not used here
            warnings.simplefilter("ignore")
            reader = _READERS[str(root)] = EnglishWordNetReader(root, None)
    return reader


def _english_root():
    """Where `nltk.corpus.wordnet` would load WordNet from (LookupError when it is not installed)."""
    import nltk

    try:
        return nltk.data.find("corpora/wordnet")
    except LookupError:
        return nltk.data.find("corpora/wordnet.zip/wordnet/")


_READERS: dict[str, object] = {}


class WordNet:
    def __init__(self, enabled: bool = True, defer: bool = False) -> None:
        """`defer=True`: only check here that the data is installed; `load()` reads it (a few
        seconds), e.g. in a thread while pass 1 runs in worker processes, which never ask WordNet."""
        self.enabled = enabled
        self.wn: Any = None  # nltk WordNetCorpusReader once loaded
        if enabled:
            if defer:
                try:
                    _english_root()
                except (LookupError, ImportError, OSError) as e:
                    raise WordNetMissing(f"{INSTALL_HINT} ({type(e).__name__})") from None
            else:
                self.load()
        # Per-instance caches (a second WordNet object must not see the first one's answers).
        self.noun_synsets = lru_cache(maxsize=1 << 16)(self._noun_synsets)
        self.synonyms = lru_cache(maxsize=1 << 16)(self._synonyms)
        self.ancestors = lru_cache(maxsize=1 << 16)(self._ancestors)
        self.cohyponyms = lru_cache(maxsize=1 << 14)(self._cohyponyms)
        self.antonyms = lru_cache(maxsize=1 << 14)(self._antonyms)
        self.lexname = lru_cache(maxsize=1 << 16)(self._lexname)
        self.knows = lru_cache(maxsize=1 << 16)(self._knows)
        self._up: dict[tuple[tuple[str, int], int], frozenset[tuple[str, int]]] = {}  # (synset, depth) -> `_within`
        self._fds: dict[str, int] = {}  # pos -> data file, for `_data_line`
        self._parts: dict[tuple[str, str], tuple[frozenset[str], frozenset[int]]] = {}  # `_synonym_parts`

    def load(self) -> None:
        """Read the WordNet data (once; no-op when disabled or loaded)."""
        if self.enabled and self.wn is None:
            try:
                self.wn = load_english_reader()
            except (LookupError, ImportError, OSError) as e:
                raise WordNetMissing(f"{INSTALL_HINT} ({type(e).__name__})") from None

    def __getstate__(self) -> dict:
        """Sent to another process (a Ray worker) as whether it is on: the receiver loads WordNet
        itself, with empty caches (they are answers, not state: the same questions get them again)."""
        return {"enabled": self.enabled, "loaded": self.wn is not None}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["enabled"], defer=not state["loaded"])  # type: ignore[misc]

    def after_fork(self) -> None:
        """Give a forked process its own WordNet data files: nltk keeps them open and seeks before
        each read, and a forked child shares the parent's file offsets, so two processes reading at
        once would get each other's lines (garbled synsets)."""
        if self.wn is not None and isinstance(getattr(self.wn, "_data_file_map", None), dict):
            self.wn._data_file_map = {}

    def _noun_synsets(self, word: str) -> tuple:
        if self.wn is None:
            return ()
        return self.first_synsets(word, "n", 3)

    def first_synsets(self, word: str, pos: str, k: int) -> tuple:
        """`wn.synsets(word, pos)[:k]`, reading only those k from the data files: nltk reads and
        parses every sense (a common word has dozens), the slow part of a first look-up."""
        wn = self.wn
        if wn is None:
            return ()
        morphy, index = getattr(wn, "_morphy", None), getattr(wn, "_lemma_pos_offset_map", None)
        if morphy is None or index is None:  # not the nltk reader this was written against
            return tuple(wn.synsets(_key(word), pos=pos)[:k])
        lemma = _key(word).lower()  # what wn.synsets does, lazily
        get = wn.synset_from_pos_and_offset
        return tuple(islice((get(p, offset) for p in pos for form in morphy(lemma, p, True)
                             for offset in index[form].get(p, [])), k))

    def _knows(self, word: str) -> bool:
        """WordNet has the word in some part of speech, inflected forms included ('sittingon', 'fut'
        and 'pictuers' it has not); True when WordNet is off."""
        wn = self.wn
        if wn is None:
            return True
        return any(self.first_synsets(word, pos, 1) for pos in "nvar")

    def adjective_senses(self, word: str) -> int:
        """How many adjective senses WordNet lists for exactly this word (0: a noun or verb only)."""
        wn = self.wn
        if wn is None:
            return 0
        index = getattr(wn, "_lemma_pos_offset_map", None)
        if index is None:  # not the nltk reader this was written against
            return len(wn.synsets(_key(word), pos="a"))
        return len(index.get(_key(word).lower(), {}).get("a", ()))

    def is_participle(self, word: str) -> bool:
        """An inflected verb form ending -ed, -en or -ing ("locked", "standing"; not "speed")."""
        wn = self.wn
        if wn is None or not word.endswith(("ed", "en", "ing")):
            return False
        morphy = getattr(wn, "_morphy", None)
        forms = morphy(word, "v", True) if morphy is not None else [wn.morphy(word, "v")]
        return any(f is not None and f != word for f in forms)

    def _synonyms(self, word: str, pos: str) -> frozenset[str]:
        """Lemma names sharing a synset with `word` (adjectives also through similar_tos)."""
        if self.wn is None:
            return frozenset()
        out: set[str] = set()
        poses = ("a", "s") if pos == "a" else (pos,)
        for p in poses:
            for s in self.first_synsets(word, p, 4):
                out.update(n.replace("_", " ").lower() for n in s.lemma_names())
                if p in ("a", "s"):
                    for t in s.similar_tos():
                        out.update(n.replace("_", " ").lower() for n in t.lemma_names())
        out.discard(word)
        return frozenset(out)

    def is_synonym(self, other: str, word: str, pos: str) -> bool:
        """`other in self.synonyms(word, pos)`, without reading the similar synsets (for an adjective
        they are most of what `synonyms` reads): their data-file offsets are matched against the
        offsets the lemma index lists for `other` (the index lists every lemma of every synset)."""
        if self.wn is None or other == word:
            return False
        mine = self._synonym_parts(word, pos)
        if mine is None or "_" in other or other != other.lower():  # not the plain case: ask synonyms
            return other in self.synonyms(word, pos)
        names, similar = mine
        if other in names:
            return True
        if not similar:
            return False
        found = self.wn._lemma_pos_offset_map.get(other.replace(" ", "_"))
        return found is not None and not similar.isdisjoint([*found.get("a", ()), *found.get("s", ())])

    def _synonym_parts(self, word: str, pos: str) -> tuple[frozenset[str], frozenset[int]] | None:
        """What `_synonyms` reads, less the similar synsets themselves: the lemma names of the word's
        first synsets, and the adjective-file offsets of the synsets similar to them (None when this
        nltk reader does not keep pointers as `_synonyms` expects)."""
        parts = self._parts.get((word, pos))
        if parts is None:
            if not isinstance(getattr(self.wn, "_lemma_pos_offset_map", None), dict):
                return None
            names: set[str] = set()
            similar: set[int] = set()
            for p in (("a", "s") if pos == "a" else (pos,)):
                for s in self.first_synsets(word, p, 4):
                    names.update(n.replace("_", " ").lower() for n in s.lemma_names())
                    if p in ("a", "s"):
                        pointers = getattr(s, "_pointers", None)
                        if pointers is None or any(q not in ("a", "s") for q, _ in pointers.get("&", ())):
                            return None
                        similar.update(offset for _q, offset in pointers.get("&", ()))
            parts = self._parts[word, pos] = (frozenset(names), frozenset(similar))
        return parts

    def _ancestors(self, word: str) -> frozenset[tuple[str, int]]:
        """Keys (`sense_key`) of the word's first two noun synsets and of every hypernym up to
        ANCESTOR_DEPTH steps above them."""
        return frozenset().union(*(self._within(sense_key(s), ANCESTOR_DEPTH) for s in self.noun_synsets(word)[:2]))

    def _within(self, key: tuple[str, int], depth: int) -> frozenset[tuple[str, int]]:
        """Keys of a synset and of the synsets at most `depth` hypernym steps above it (what
        `s.closure(hypernyms + instance_hypernyms, depth)` reaches, plus `s`). Memoised per (synset,
        depth): words share most of their ancestors, so each is walked once."""
        up = self._up.get((key, depth))
        if up is None:
            up = frozenset((key,))
            if depth > 0:
                up = up.union(*(self._within(h, depth - 1) for h in self._hypernym_keys(key)))
            self._up[key, depth] = up
        return up

    def _hypernym_keys(self, key: tuple[str, int]) -> list[tuple[str, int]]:
        """Keys of a synset's hypernyms and instance hypernyms (nltk's `hypernyms()` and
        `instance_hypernyms()`: its synset-level "@" and "@i" pointers), read from its data-file line
        unless nltk has built the synset already. Building a Synset for every ancestor (lemmas,
        sense keys, gloss) is most of what a first `ancestors` costs, and only the pointers are read."""
        pos, offset = key
        cache = getattr(self.wn, "_synset_offset_cache", None)
        synset = cache[pos].get(offset) if isinstance(cache, dict) else None
        if synset is None:
            line = self._data_line(pos, offset)
            fields = line.split("|", 1)[0].split() if line is not None else []
            if fields and fields[0] == f"{offset:08d}":
                i = 4 + 2 * int(fields[3], 16)  # offset, lexname, pos, lemma count, (lemma, lex id) ...
                out = []
                for k in range(i + 1, i + 1 + 4 * int(fields[i]), 4):  # (symbol, offset, pos, source/target)
                    if fields[k] in ("@", "@i") and fields[k + 3] == "0000":
                        out.append((fields[k + 2], int(fields[k + 1])))
                return out
            synset = self.wn.synset_from_pos_and_offset(pos, offset)  # not read here: nltk's way
        pointers = getattr(synset, "_pointers", None)  # what nltk's `_related` reads: no synset is built
        if isinstance(pointers, dict):
            return [*pointers.get("@", ()), *pointers.get("@i", ())]
        return [sense_key(h) for h in synset.hypernyms() + synset.instance_hypernyms()]

    def _data_line(self, pos: str, offset: int) -> str | None:
        """The data-file line at `offset` (None when the files are not plain files, e.g. in a zip).
        Read with `os.pread`, which moves no file offset: safe in forked workers."""
        fd = self._fds.get(pos)
        if fd is None:
            path = getattr(self.wn.root, "path", None) if self.wn is not None else None
            name = {"n": "noun", "v": "verb", "a": "adj", "s": "adj", "r": "adv"}.get(pos)
            if not isinstance(path, str) or name is None or not os.path.isfile(os.path.join(path, f"data.{name}")):
                return None
            fd = self._fds[pos] = os.open(os.path.join(path, f"data.{name}"), os.O_RDONLY)
        data = b""
        while b"\n" not in data:
            more = os.pread(fd, 1 << 13, offset + len(data))
            if not more:
                break
            data += more
        return data.split(b"\n", 1)[0].decode("utf-8", "replace")

    def is_kind_of(self, a: str, b: str) -> bool:
        """One of noun `a`'s first two senses is, or is a kind of, one of `b`'s (table / furniture);
        False without WordNet."""
        if self.wn is None:
            return False
        sb = {sense_key(s) for s in self.noun_synsets(b)[:2]}
        return bool(sb & self.ancestors(a))

    def is_a_either_way(self, a: str, b: str) -> bool:
        """True when one noun names a kind of the other (dog / animal): replacing one by the other
        could leave the caption true."""
        if self.wn is None:
            return False
        sa = {sense_key(s) for s in self.noun_synsets(a)[:2]}
        sb = {sense_key(s) for s in self.noun_synsets(b)[:2]}
        return bool(sa & self.ancestors(b)) or bool(sb & self.ancestors(a))

    def _cohyponyms(self, word: str) -> tuple[str, ...]:
        """Sister terms: other hyponyms of the word's first synset's hypernyms (cat for dog)."""
        if self.wn is None:
            return ()
        syns = self.noun_synsets(word)
        if not syns:
            return ()
        own = {n.lower() for s in syns for n in s.lemma_names()}
        out: dict[str, None] = {}
        for h in _ordered(syns[0].hypernyms())[:2]:
            for sister in _ordered(h.hyponyms()):
                for n in sister.lemma_names()[:2]:
                    n = n.replace("_", " ").lower()
                    if n not in own and n != word:
                        out[n] = None
        return tuple(out)

    def sister_sense(self, word: str, other: str) -> bool:
        """`other` is a sister term of `word` in one of its own first two noun senses: the sense that
        makes it a sister is a common one ('woman' is a sister of 'man'; 'match' is one only in a rare
        sense, 'a person regarded as a prospect', and is no replacement for 'man')."""
        syns = self.noun_synsets(word)
        if not syns:
            return False
        up = {sense_key(h) for h in _ordered(syns[0].hypernyms())[:2]}
        return any(sense_key(h) in up for s in self.noun_synsets(other)[:2] for h in s.hypernyms())

    def _antonyms(self, word: str, pos: str) -> tuple[str, ...]:
        if self.wn is None:
            return ()
        out: dict[str, None] = {}
        poses = ("a", "s") if pos == "a" else (pos,)
        for p in poses:
            for s in self.first_synsets(word, p, 3):
                for lem in s.lemmas():
                    for ant in _ordered(lem.antonyms()):
                        out[ant.name().replace("_", " ").lower()] = None
        return tuple(out)

    def hypernyms(self, word: str) -> tuple[str, ...]:
        """Lemma names of the direct hypernyms of the word's first noun sense (dog -> canine, ...)."""
        syns = self.noun_synsets(word)
        if not syns:
            return ()
        return tuple(h.lemma_names()[0].replace("_", " ").lower() for h in _ordered(syns[0].hypernyms()))

    def _lexname(self, word: str) -> str:
        """WordNet lexicographer file of the first noun sense (noun.animal, noun.artifact, ...); of the
        food sense where the first is a person nobody names in a photo's caption (no use of the word in
        WordNet's tagged corpus: 'burger' is first a burgher, 'hot dog' a show-off) and a later sense is food."""
        syns = self.noun_synsets(word)
        if not syns:
            return ""
        first = syns[0].lexname()
        if first == "noun.person" and len(syns) > 1:
            food = next((s for s in syns[1:] if s.lexname() == "noun.food"), None)
            if food is not None and not any(lem.count() for lem in syns[0].lemmas() if lem.name().lower() == _key(word).lower()):
                return food.lexname()
        return first
