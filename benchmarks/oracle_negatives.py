"""An upper-bound control for the text side: the embedded world's shards with *oracle* KG negatives.

kgaug builds its negatives from pseudo-captions ("a red square right of a green triangle."), while
the primary caption a CLIP trainer uses is human-style ("there is a red square on the right of a
green triangle"): a text-only model separates the two by wording alone (benchmarks/negative_flow.py).
This script rewrites a shard folder so that every sample's hard negatives are one-word edits of its
own primary caption — same wording, one fact changed (swap_att, swap_obj, replace_rel, reverse_rel,
replace_att, replace_obj) — using the tiny world's vocabulary. Training `--negatives static` on it
asks whether style-matched text negatives alone teach binding that transfers to held-out pairs
(docs/RESULTS.md: they raise seen-pair accuracy, not held-out accuracy, and do not teach relations).

    .venv/bin/python benchmarks/oracle_negatives.py build/ablation/shards /tmp/oracle_shards
"""

from __future__ import annotations

import argparse
import random
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from clusterbuild import contract as C  # noqa: E402
from clusterbuild import shardio  # noqa: E402
from kgaug.synth.world import WorldConfig  # noqa: E402
from train import data  # noqa: E402

FLIP = {"left": "right", "right": "left", "above": "below", "below": "above", "over": "under", "under": "over"}


def edits(caption: str, colours: list[str], shapes: list[str], rng: random.Random) -> list[tuple[str, str]]:
    """(negative text, type) pairs, each one fact of `caption` changed in its own wording."""
    w = caption.split()
    ci = [i for i, x in enumerate(w) if x in colours]
    si = [i for i, x in enumerate(w) if x in shapes]
    ri = [i for i, x in enumerate(w) if x in FLIP]
    out = []

    def put(pairs: list[tuple[int, str]], typ: str) -> None:
        v = list(w)
        for i, x in pairs:
            v[i] = x
        if v != w:
            out.append((" ".join(v), typ))

    if len(ci) == 2:
        put([(ci[0], w[ci[1]]), (ci[1], w[ci[0]])], "swap_att")
    if len(si) == 2:
        put([(si[0], w[si[1]]), (si[1], w[si[0]])], "swap_obj")
    if ri:
        put([(ri[0], FLIP[w[ri[0]]])], "replace_rel")
    if len(ci) == 2 and len(si) == 2:
        put([(ci[0], w[ci[1]]), (si[0], w[si[1]]), (ci[1], w[ci[0]]), (si[1], w[si[0]])], "reverse_rel")
    for k in ci[:2]:
        put([(k, rng.choice([c for c in colours if c != w[k]]))], "replace_att")
    for k in si[:2]:
        put([(k, rng.choice([s for s in shapes if s not in {w[i] for i in si}]))], "replace_obj")
    return out


def rewrite(src: str, preset: str) -> Iterator[C.Sample]:
    cfg = WorldConfig.preset(preset)
    for s in C.iter_samples(data.resolve_shards([src])):
        rng = random.Random(s.key)
        meta = dict(s.meta)
        meta["hard_negatives"] = [{"type": typ, "text": t, "from": "", "to": "", "caption": s.txt}
                                  for t, typ in edits(s.txt, cfg.colours, cfg.shapes, rng)]
        yield C.Sample(s.key, s.image, s.image_ext, s.txt, meta)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("shards")
    p.add_argument("out", type=Path)
    p.add_argument("--preset", default="tiny")
    p.add_argument("--samples-per-shard", type=int, default=10000)
    a = p.parse_args(argv)
    sizes = shardio.write_shard_set(a.out, rewrite(a.shards, a.preset), a.samples_per_shard)
    print(f"wrote {sum(sizes.values())} samples to {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
