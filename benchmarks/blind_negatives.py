"""Blind text-only detectors of a `kgaug build` table's hard negatives (issue 19, goal 2; docs/QUALITY.md).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/blind_negatives.py OUT_DIR [--seed 0] [--folds 5] \
        [--dim 4096] [--l2 1e-3] [--name NAME] [--json FILE] [--top 10]

A negative that a model can reject without the image teaches grammar, not vision (SugarCrepe). Every
hard negative of the table is paired with the caption it was edited from (`caption`); the detectors
see only the two texts and must say which one is the negative. 0.5 is blind; 1.0 is spottable.

1. **Detector**: each text is a hashed bag of unigrams + bigrams (crc32 buckets, `--dim` per text,
   presence 0/1, sentence boundaries as tokens); a pair is (first − second, first ⊙ second) with the
   two texts in a random order per pair (seeded); an L2-regularised logistic regression (torch,
   full-batch L-BFGS, float64) predicts whether the first text is the negative. 5-fold
   cross-validation grouped by image (no image's pairs in both train and test); accuracy on the
   held-out folds, per type and overall.
2. **LM score**: a unigram + bigram language model (add-one unigram, bigram interpolated with it)
   fitted on the positives (human captions and pseudo-captions) of the training folds' images; per
   held-out pair, 1 when the negative has the lower mean per-token log-likelihood than its source
   caption, 0.5 on a tie. Its mean is the accuracy of "the less likely text is the negative"; far
   below 0.5 is as spottable as far above ("the more likely text is the negative": added common
   words raise the mean per-token likelihood), so `lm_either_way` = max(score, 1 − score) is given too.
   It is `kgaug.fluency.BigramLM`, the model family `kgaug build`'s adversarial refinement balances
   against: on a refined table it is no independent judge (the detector is).

Also per type: pairs, images that have the type and their share of the table's rows (coverage).
Prints a markdown table; `--json FILE` writes the numbers. Deterministic for a seed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusterbuild.contract import NEGATIVE_TYPES  # noqa: E402
from kgaug.fluency import BOS, EOS, BigramLM, tokens  # noqa: E402  (the LM `kgaug build` refines against)
from kgaug.table import read_rows  # noqa: E402
from kgclip.atomic import atomic_write_json  # noqa: E402

# --- pure maths ----------------------------------------------------------------------------------

def ngrams(text: str) -> list[str]:
    """Unigrams and bigrams of a text, the bigrams with sentence boundaries ("<s> a", "dog </s>")."""
    toks = tokens(text)
    padded = [BOS, *toks, EOS]
    return toks + [f"{a} {b}" for a, b in zip(padded, padded[1:])]


def bucket(gram: str, dim: int) -> int:
    """The hash bucket of an n-gram: crc32 (the same on every run and platform)."""
    return zlib.crc32(gram.encode("utf-8")) % dim


def hashed(text: str, dim: int) -> np.ndarray:
    """Presence (0/1) vector of a text's hashed unigrams + bigrams."""
    v = np.zeros(dim, dtype=np.float64)
    for g in ngrams(text):
        v[bucket(g, dim)] = 1.0
    return v


def pair_features(first: Sequence[str], second: Sequence[str], dim: int) -> np.ndarray:
    """[first − second, first ⊙ second] per pair: an (n, 2·dim) matrix."""
    a = np.stack([hashed(t, dim) for t in first]) if first else np.zeros((0, dim))
    b = np.stack([hashed(t, dim) for t in second]) if second else np.zeros((0, dim))
    return np.concatenate([a - b, a * b], axis=1)


def group_folds(groups: Sequence[str], k: int, rng: np.random.Generator) -> np.ndarray:
    """Fold index per item: the distinct groups (sorted, then shuffled) dealt round-robin to k folds."""
    distinct = sorted(set(groups))
    order = rng.permutation(len(distinct))
    fold_of = {distinct[j]: i % k for i, j in enumerate(order)}
    return np.array([fold_of[g] for g in groups], dtype=np.int64)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float, max_iter: int = 200) -> tuple[np.ndarray, float]:
    """Weights and bias minimising mean log-loss + l2/2·|w|² (bias not penalised), by L-BFGS."""
    import torch

    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.asarray(y, dtype=np.float64))
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(xt @ w + b, yt) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a few hundred pairs: threads only add contention (10x slower on a busy box)
    try:
        opt.step(closure)
    finally:
        torch.set_num_threads(threads)
    return w.detach().numpy().copy(), float(b.detach())


def predict_logistic(x: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
    """1 where the model says the first text is the negative."""
    return (x @ w + b > 0).astype(np.int64)


def lm_hit(lm: BigramLM, positive: str, negative: str) -> float:
    """1 when the negative is the less likely text per token, 0.5 on a tie, else 0."""
    p, n = lm.per_token(positive), lm.per_token(negative)
    return 1.0 if n < p else 0.5 if n == p else 0.0


@dataclass
class Pairs:
    """(positive, negative) pairs of a table with the image each came from."""

    positives: list[str]
    negatives: list[str]
    types: list[str]
    groups: list[str]
    image_positives: dict[str, list[str]]  # image key -> its positives (human + pseudo-captions)


def pairs_from_rows(rows: Iterable[dict]) -> tuple[Pairs, dict]:
    """Pairs from kgaug table rows, and per type the images that have it (plus the row count)."""
    pos, neg, types, groups, image_pos = [], [], [], [], {}
    images_with: Counter = Counter()
    n_rows = 0
    for r in rows:
        n_rows += 1
        key = r["key"]
        image_pos[key] = [*(r.get("captions") or []), *(p["text"] for p in r.get("pseudo_captions") or [])]
        seen = set()
        for n in r.get("hard_negatives") or []:
            seen.add(n["type"])
            if not n.get("caption") or not n.get("text"):
                continue
            pos.append(n["caption"])
            neg.append(n["text"])
            types.append(n["type"])
            groups.append(key)
        images_with.update(seen)
    return Pairs(pos, neg, types, groups, image_pos), {"rows": n_rows, "images_with": dict(images_with)}


def evaluate(pairs: Pairs, seed: int = 0, folds: int = 5, dim: int = 4096, l2: float = 1e-3,
             lm_lambda: float = 0.7) -> dict:
    """Cross-validated detector accuracy and LM score per held-out pair (arrays in pair order)."""
    n = len(pairs.types)
    rng = np.random.default_rng(seed)
    neg_first = (rng.random(n) < 0.5).astype(np.int64)  # label: 1 when the first text is the negative
    fold = group_folds(pairs.groups, folds, rng)
    first = [pairs.negatives[i] if neg_first[i] else pairs.positives[i] for i in range(n)]
    second = [pairs.positives[i] if neg_first[i] else pairs.negatives[i] for i in range(n)]
    x = pair_features(first, second, dim)
    correct = np.zeros(n, dtype=np.float64)
    lm = np.zeros(n, dtype=np.float64)
    for f in range(folds):
        test = fold == f
        train = ~test
        if not test.any():
            continue
        if train.any() and len(set(neg_first[train].tolist())) == 2:
            w, b = fit_logistic(x[train], neg_first[train], l2)
            correct[test] = predict_logistic(x[test], w, b) == neg_first[test]
        else:
            correct[test] = 0.5
        train_groups = {g for g, t in zip(pairs.groups, train) if t}
        model = BigramLM.fit((t for g in sorted(train_groups) for t in pairs.image_positives.get(g, [])),
                             lm_lambda)
        for i in np.flatnonzero(test):
            lm[i] = lm_hit(model, pairs.positives[i], pairs.negatives[i])
    return {"correct": correct, "lm": lm, "fold": fold, "neg_first": neg_first, "x": x}


def top_ngrams(pairs: Pairs, x: np.ndarray, y: np.ndarray, dim: int, l2: float, k: int) -> list[list]:
    """The k n-grams whose presence most says "this text is the negative", from a fit on all pairs
    (weights of the first − second block). A bucket is named by the n-grams that differ between the
    two texts of some pair (several when they collide)."""
    if k <= 0 or len(set(y.tolist())) < 2:
        return []
    w, _ = fit_logistic(x, y, l2)
    names: dict[int, set[str]] = {}
    for p, n in zip(pairs.positives, pairs.negatives):
        for g in set(ngrams(p)) ^ set(ngrams(n)):
            names.setdefault(bucket(g, dim), set()).add(g)
    order = np.argsort(-w[:dim], kind="stable")[:k]
    return [[" | ".join(sorted(names.get(int(j), {"?"}))), round(float(w[j]), 3)] for j in order]


def summarise(pairs: Pairs, result: dict, table_info: dict) -> dict:
    """Per type and overall: pairs, images with the type, coverage, detector accuracy (±95 %), LM score."""
    types = np.array(pairs.types)
    rows = table_info["rows"]
    out: dict = {}
    order = [t for t in NEGATIVE_TYPES] + sorted(set(pairs.types) - set(NEGATIVE_TYPES))
    for t in [*order, "overall"]:
        mask = np.ones(len(types), bool) if t == "overall" else types == t
        m = int(mask.sum())
        acc = float(result["correct"][mask].mean()) if m else None
        images = len(set(pairs.groups)) if t == "overall" else table_info["images_with"].get(t, 0)
        out[t] = {
            "pairs": m,
            "images": images,
            "coverage": round(images / rows, 4) if rows else None,
            "detector_accuracy": round(acc, 4) if acc is not None else None,
            "detector_ci95": round(1.96 * math.sqrt(acc * (1 - acc) / m), 4) if m else None,
            "lm_score": round(float(result["lm"][mask].mean()), 4) if m else None,
        }
        s = out[t]["lm_score"]
        out[t]["lm_either_way"] = round(max(s, 1 - s), 4) if s is not None else None
    return out


def markdown(name: str, per_type: dict) -> str:
    def num(v, pct=False):
        return "—" if v is None else (f"{100 * v:.0f} %" if pct else f"{v:.2f}")

    lines = [f"| {name}: type | pairs | images with it | coverage | detector acc. | ±95 % | LM score | LM either way |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for t, r in per_type.items():
        label = f"**{t}**" if t == "overall" else t
        lines.append(f"| {label} | {r['pairs']} | {r['images']} | {num(r['coverage'], True)} | "
                     f"{num(r['detector_accuracy'])} | {num(r['detector_ci95'])} | {num(r['lm_score'])} | "
                     f"{num(r['lm_either_way'])} |")
    return "\n".join(lines)


# --- CLI -----------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir", type=Path, help="a kgaug build output folder")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--dim", type=int, default=4096, help="hash buckets per text")
    ap.add_argument("--l2", type=float, default=1e-3, help="L2 weight on the mean log-loss")
    ap.add_argument("--lm-lambda", type=float, default=0.7, help="bigram weight of the LM")
    ap.add_argument("--top", type=int, default=10, help="list the n-grams that most give a negative away")
    ap.add_argument("--name", default=None, help="table name in the output (default: the folder's name)")
    ap.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1") or 1))
    pairs, info = pairs_from_rows(read_rows(args.out_dir))
    if not pairs.types:
        sys.exit(f"{args.out_dir}: no hard negatives with a source caption")
    result = evaluate(pairs, args.seed, args.folds, args.dim, args.l2, args.lm_lambda)
    per_type = summarise(pairs, result, info)
    name = args.name or args.out_dir.resolve().name
    report = {
        "table": name,
        "folder": str(args.out_dir),
        "rows": info["rows"],
        "options": {"seed": args.seed, "folds": args.folds, "dim": args.dim, "l2": args.l2,
                    "lm_lambda": args.lm_lambda},
        "per_type": per_type,
        "giveaway_ngrams": top_ngrams(pairs, result["x"], result["neg_first"], args.dim, args.l2, args.top),
    }
    print(markdown(name, per_type))
    if report["giveaway_ngrams"]:
        print("\nn-grams that most say 'negative' (fit on all pairs): "
              + ", ".join(f"{g} ({w})" for g, w in report["giveaway_ngrams"]))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(args.json, report)
    return report


if __name__ == "__main__":
    main()
