"""A text-only plausibility model learnt from the corpus's own captions, and the adversarial refinement
it drives (issue 19, goal 3).

A hard negative that a text-only model can tell from its caption teaches grammar, not vision
(SugarCrepe, which refined its benchmark once, offline, against such models). `kgaug build` does it
for every table it writes: after pass 1 it fits `BigramLM` on the corpus's captions, measures on a
seeded sample of images how often each type's negative is the less likely text per token than the
caption it was edited from (`gap` < 0), and from then on keeps a negative of the side a type leans to
only with the probability that balances the two sides (`acceptance`), choosing instead among the
slot's other valid candidates. What it turns down is counted in `report.json` (`rejected`, reason
`REFINED`). The maths is here, pure; `kgaug.refine` and `Generator._take` wire it in.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
BOS, EOS = "<s>", "</s>"
REFINED = "refined: a text-only LM tells it from its caption"
FLOOR = 0.2  # the least share of a type's leaning side kept: a type is thinned, never removed
MIN_SAMPLE = 50  # a type with fewer calibration negatives is left alone: too few to say it leans


def fold(key: str) -> int:
    """The half of the corpus an image belongs to (0 or 1, from its key): its captions fit one LM and
    its negatives are scored by the other, so a caption is never scored by a model that has read it."""
    return zlib.crc32(key.encode()) & 1


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation dropped)."""
    return _TOKEN.findall((text or "").lower())


@dataclass
class BigramLM:
    """Add-one unigram model, bigram interpolated with it (weight `lam` on the bigram estimate)."""

    unigrams: Counter
    bigrams: Counter
    contexts: Counter
    total: int
    lam: float = 0.7

    @classmethod
    def fit(cls, texts: Iterable[str], lam: float = 0.7) -> BigramLM:
        uni: Counter = Counter()
        bi: Counter = Counter()
        ctx: Counter = Counter()
        for t in texts:
            seq = [BOS, *tokens(t), EOS]
            uni.update(seq[1:])
            bi.update(zip(seq, seq[1:]))
            ctx.update(seq[:-1])
        return cls(uni, bi, ctx, sum(uni.values()), lam)

    def p_unigram(self, w: str) -> float:
        return (self.unigrams.get(w, 0) + 1) / (self.total + len(self.unigrams) + 1)  # +1: unknown words

    def log_prob(self, prev: str, w: str) -> float:
        pu = self.p_unigram(w)
        c = self.contexts.get(prev, 0)
        if not c:
            return math.log(pu)
        return math.log(self.lam * self.bigrams.get((prev, w), 0) / c + (1 - self.lam) * pu)

    def per_token(self, text: str) -> float:
        """Mean log-likelihood per token (the end of sentence counts as a token)."""
        seq = [BOS, *tokens(text), EOS]
        return sum(self.log_prob(a, c) for a, c in zip(seq, seq[1:])) / (len(seq) - 1)


def gap(lm: BigramLM, negative: str, caption: str) -> float:
    """How much more likely per token the negative is than its caption (< 0: the less likely text)."""
    return lm.per_token(negative) - lm.per_token(caption)


def side(g: float) -> int:
    """-1: the negative is the less likely text; 1: the more likely; 0: a tie (tells nothing)."""
    return (g > 0) - (g < 0)


def acceptance(gaps: Mapping[str, Iterable[float]], floor: float = FLOOR,
               min_sample: int = MIN_SAMPLE) -> dict[str, tuple[int, float]]:
    """Per type, (the side its negatives lean to, the probability a negative of that side is kept) so
    that as many kept negatives are less likely than their caption as more likely: the minority side's
    count over the majority's, at least `floor`. A type that does not lean, or has fewer than
    `min_sample` gaps (rare types, swaps on small corpora: too few to tell), gets (0, 1.0)."""
    out: dict[str, tuple[int, float]] = {}
    for kind, gs in gaps.items():
        n = Counter(side(g) for g in gs)
        lo, hi = n[-1], n[1]
        if lo == hi or sum(n.values()) < min_sample:
            out[kind] = (0, 1.0)
        else:
            lean = -1 if lo > hi else 1
            out[kind] = (lean, max(floor, min(lo, hi) / max(lo, hi)))
    return out
