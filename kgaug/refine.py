"""Adversarial refinement at build time, wired to the corpus (the LM and its maths: kgaug/fluency.py).

The corpus's captions are split into two halves of the images (`fluency.fold`); each half's negatives are
scored by an LM fitted on the other half, so no caption is scored by a model that has read it.
`calibrate` measures, per type, which way its negatives lean (less or more likely per token than
their caption) on the first images, and sets the generator to keep the leaning side only with the
probability that balances the type.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterable

from kgaug import fluency
from kgaug.engine.spill import SpillRecord
from kgaug.fluency import fold
from kgaug.image import image_inputs
from kgaug.kg import KG
from kgaug.negatives import Generator

LM_MAX_TEXTS = 500_000  # captions the refinement's LM is fitted on (the spill's first; enough for bigrams)
LM_MIN_TOKENS = 500  # per half: below this the corpus is too small to say what reads as unlikely
CALIBRATION_IMAGES = 2_000  # images whose negatives say which way each type leans


def fit_lm(images: Iterable[SpillRecord], limit: int = LM_MAX_TEXTS
           ) -> tuple[tuple[fluency.BigramLM, fluency.BigramLM], int]:
    """The refinement's two LMs, one per half of the images (`fold`), each fitted on the other half's
    captions (human captions; VG: region phrases), in spill order; and how many captions were read."""
    texts: tuple[list[str], list[str]] = ([], [])
    n = 0
    for line in images:
        texts[1 - fold(line.key)].extend(line.captions)  # scored by the other half's model
        n += len(line.captions)
        if n >= limit:
            break
    return (fluency.BigramLM.fit(texts[0]), fluency.BigramLM.fit(texts[1])), n


def calibrate(images: Iterable[SpillRecord], kg: KG, gen: Generator, cfg, limit: int = CALIBRATION_IMAGES,
              floor: float = fluency.FLOOR) -> dict:
    """Which way each type's negatives lean and how strongly, on the first `limit` images
    (refinement off, draws of their own, rejections not counted): sets `gen.refine` and returns what
    the report shows of it."""
    gen.refine = {}
    saved = Counter(gen.rejected)
    gaps: dict[str, list[float]] = {}
    try:
        for i, line in enumerate(images):
            if i >= limit:
                break
            rng = random.Random(f"{cfg.seed}:calibrate:{line.key}")
            _, pseudo, human, ev = image_inputs(line, kg, cfg, rng)
            lm = gen.lms[fold(line.key)]
            for n in gen.for_image(human + pseudo, ev, rng):
                gaps.setdefault(n.type, []).append(fluency.gap(lm, n.text, n.caption))
    finally:
        gen.rejected = saved
    gen.refine = fluency.acceptance(gaps, floor)
    names = {-1: "less likely than its caption", 0: "neither", 1: "more likely than its caption"}
    return {kind: {"sample_negatives": len(gs), "less_likely_share": round(sum(g < 0 for g in gs) / len(gs), 4),
                   "leans": names[gen.refine[kind][0]], "keep": round(gen.refine[kind][1], 4)}
            for kind, gs in sorted(gaps.items())}


def refinement(images, kg: KG, gen: Generator, cfg) -> dict:
    """Fit the corpus LMs and calibrate `gen` against them; what the report shows. `images()`: a fresh
    iterator over the spilled images, in spill order (read twice)."""
    lms, texts = fit_lm(images())
    tokens = [lm.total for lm in lms]
    info: dict = {"lm_captions": texts, "lm_tokens": sum(tokens)}
    if min(tokens) < LM_MIN_TOKENS:
        info["off"] = f"a half of the corpus has {min(tokens)} caption tokens, fewer than {LM_MIN_TOKENS}"
        return info
    gen.lms = lms
    info["types"] = calibrate(images(), kg, gen, cfg, floor=cfg.refine_floor)
    return info
