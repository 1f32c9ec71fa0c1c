"""Probe: can a tiny open_clip model learn the embedded world's relations at all, and where?

Self-contained on purpose (no kgaug build / shards / trainer): the generator renders an in-memory
tensor dataset, a plain open_clip CLIP model trains on it with InfoNCE (optionally + K NegCLIP-style
hard negatives per image as extra text columns), and held-out SugarCrepe-style accuracy and zero-shot
shape accuracy are measured every --eval-every steps. One JSON line per run goes to --out.

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/synth_probe.py --grid cpu --out /tmp/probe.jsonl
    python benchmarks/synth_probe.py --grid gpu --device cuda --out $OUT/probe.jsonl   # ~5 min on an H100

Override any run field for all runs of a grid with --set key=value (e.g. --set steps=300).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kgaug.synth import render, text, world  # noqa: E402
from kgaug.synth.world import WorldConfig  # noqa: E402

BASE = dict(preset="tiny", n_shapes=None, n_colours=None, use_size=None, use_texture=None, axes=None,
            image_size=None, n_train=20000, n_eval=600, layers=2, width=64, patch=8, pool="tok",
            text_layers=2, steps=600, batch=256, lr=1e-3, negatives=0, seed=0, eval_every=200, wd=0.1)

GRIDS = {
    # a handful of CPU-sized runs (~2-3 min each on 2 cores)
    "cpu": [
        dict(preset="tiny"),
        dict(preset="tiny", negatives=2),
        dict(preset="small"),
        dict(preset="small", negatives=2),
    ],
    # a GPU grid (one H100, <= ~5 min in all with --budget-s 280): world size x depth x steps x negatives;
    # runs on one world share its rendered data (cached), the most informative runs come first
    "gpu": [
        dict(preset="tiny", steps=2000),
        dict(preset="small", steps=2000),
        dict(preset="small", steps=2000, negatives=3),
        dict(preset="small", steps=2000, layers=4, text_layers=4, width=128),
        dict(preset="small", steps=4000),
        dict(preset="small", steps=2000, lr=3e-3),
        dict(preset="small", steps=2000, pool="avg"),
        dict(preset="default", steps=2000),
        dict(preset="default", steps=2000, negatives=3),
        dict(preset="default", steps=4000, layers=4, text_layers=4, width=128),
    ],
}


def world_of(run: dict) -> WorldConfig:
    over = {k: run[k] for k in ("n_shapes", "n_colours", "use_size", "use_texture", "image_size")
            if run.get(k) is not None}
    if run.get("axes"):
        over["axes"] = tuple(run["axes"])
    return WorldConfig.preset(run["preset"], seed=run["seed"], **over)


def to_tensor(imgs: np.ndarray) -> torch.Tensor:
    return (torch.from_numpy(imgs).permute(0, 3, 1, 2).float() / 127.5) - 1.0


def build_data(cfg: WorldConfig, run: dict, tok) -> dict:
    pairs, _ = world.pair_split(cfg)
    imgs, caps, negs = [], [], []
    for i in range(run["n_train"]):
        sc = world.train_scene(cfg, i, pairs)
        imgs.append(render.render(sc, cfg.image_size))
        caps.append(text.human_captions(cfg, sc, world.scene_rng(cfg, "train", 10_000_000 + i)))
        if run["negatives"]:
            ng = [n for _, n in text.negatives(cfg, sc, world.scene_rng(cfg, "train", 20_000_000 + i)).values()]
            negs.append((ng * run["negatives"])[: run["negatives"]] if ng else [caps[-1][0]] * run["negatives"])
    data = {"images": to_tensor(np.stack(imgs)),
            "captions": torch.stack([tok(c) for c in caps])}  # N x 3 x L
    if negs:
        data["negatives"] = torch.stack([tok(n) for n in negs])  # N x K x L
    scenes, subsets = __import__("kgaug.synth.writer", fromlist=["x"]).sugarcrepe_items(cfg, run["n_eval"])
    data["eval_images"] = to_tensor(np.stack([render.render(s, cfg.image_size) for s in scenes]))
    data["eval"] = {s: (torch.tensor([int(k) for k in items]), tok([v["caption"] for v in items.values()]),
                        tok([v["negative_caption"] for v in items.values()])) for s, items in subsets.items()}
    zs_imgs, zs_lab = [], []
    for k in range(300):
        shape = cfg.shapes[k % len(cfg.shapes)]
        colour = cfg.colours[(k // len(cfg.shapes)) % len(cfg.colours)]
        zs_imgs.append(render.render(world.single_object_scene(cfg, k, shape, colour), cfg.image_size))
        zs_lab.append(k % len(cfg.shapes))
    data["zs_images"] = to_tensor(np.stack(zs_imgs))
    data["zs_labels"] = torch.tensor(zs_lab)
    data["zs_texts"] = tok([f"a {s}" for s in cfg.shapes])
    return data


def make_model(cfg: WorldConfig, run: dict, device: str):
    import open_clip

    vision = dict(image_size=cfg.image_size, layers=run["layers"], width=run["width"], head_width=32,
                  patch_size=run["patch"], pool_type=run["pool"])
    txt = dict(context_length=32, vocab_size=49408, width=run["width"], heads=max(1, run["width"] // 32),
               layers=run["text_layers"])
    return open_clip.CLIP(embed_dim=run["width"], vision_cfg=vision, text_cfg=txt).to(device)


@torch.no_grad()
def evaluate(model, data: dict, device: str) -> dict:
    model.eval()
    img = F.normalize(model.encode_image(data["eval_images"].to(device)), dim=-1)
    out = {}
    for subset, (idx, pos, neg) in data["eval"].items():
        ti = img[idx.to(device)]
        sp = (ti * F.normalize(model.encode_text(pos.to(device)), dim=-1)).sum(-1)
        sn = (ti * F.normalize(model.encode_text(neg.to(device)), dim=-1)).sum(-1)
        out[subset] = round(float((sp > sn).float().mean()), 4)
    zi = F.normalize(model.encode_image(data["zs_images"].to(device)), dim=-1)
    zt = F.normalize(model.encode_text(data["zs_texts"].to(device)), dim=-1)
    out["zeroshot_shape"] = round(float(((zi @ zt.T).argmax(-1).cpu() == data["zs_labels"]).float().mean()), 4)
    model.train()
    return out


_DATA_CACHE: dict[str, dict] = {}


def train_run(run: dict, device: str) -> dict:
    import open_clip

    torch.manual_seed(run["seed"])
    cfg = world_of(run)
    tok = open_clip.get_tokenizer("ViT-B-32", context_length=32)
    t0 = time.perf_counter()
    key = json.dumps([repr(cfg), run["n_train"], run["n_eval"], run["negatives"]])
    if key not in _DATA_CACHE:
        _DATA_CACHE.clear()  # one world at a time in memory
        _DATA_CACHE[key] = build_data(cfg, run, tok)
    data = _DATA_CACHE[key]
    t_data = time.perf_counter() - t0
    model = make_model(cfg, run, device)
    opt = torch.optim.AdamW(model.parameters(), lr=run["lr"], weight_decay=run["wd"])
    warm = max(1, run["steps"] // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / run["steps"]))))
    g = torch.Generator().manual_seed(run["seed"])
    n = data["images"].shape[0]
    curve, t1 = [], time.perf_counter()
    for step in range(1, run["steps"] + 1):
        idx = torch.randint(0, n, (run["batch"],), generator=g)
        which = torch.randint(0, 3, (run["batch"],), generator=g)
        texts = data["captions"][idx, which]
        if "negatives" in data:
            texts = torch.cat([texts, data["negatives"][idx].flatten(0, 1)])
        img_f, txt_f, scale = model(data["images"][idx].to(device), texts.to(device))
        logits = scale * img_f @ txt_f.T  # B x (B + B*K): NegCLIP's layout, negatives only as extra columns
        labels = torch.arange(run["batch"], device=device)
        loss = (F.cross_entropy(logits, labels) + F.cross_entropy(logits[:, : run["batch"]].T, labels)) / 2
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % run["eval_every"] == 0 or step == run["steps"]:
            res = evaluate(model, data, device)
            res.update(step=step, loss=round(float(loss.detach()), 4), s=round(time.perf_counter() - t1, 1))
            curve.append(res)
            print(json.dumps({"run": {k: v for k, v in run.items() if v is not None}, **res}), flush=True)
    return {"run": run, "world": {"shapes": cfg.n_shapes, "colours": cfg.n_colours, "size": cfg.use_size,
                                  "texture": cfg.use_texture, "axes": list(cfg.axes), "image_size": cfg.image_size},
            "final": curve[-1], "curve": curve, "data_s": round(t_data, 1),
            "train_s": round(time.perf_counter() - t1, 1), "device": device}


def parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", default="cpu", choices=sorted(GRIDS))
    p.add_argument("--only", default=None, help="comma-separated run indices of the grid")
    p.add_argument("--set", action="append", default=[], help="key=value applied to every run")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--out", default="probe.jsonl")
    p.add_argument("--budget-s", type=float, default=0, help="start no new run after this many seconds")
    a = p.parse_args(argv)
    t_start = time.perf_counter()
    over = {k: parse_value(v) for k, v in (s.split("=", 1) for s in a.set)}
    runs = GRIDS[a.grid]
    if a.only:
        runs = [runs[int(i)] for i in a.only.split(",")]
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    for r in runs:
        if a.budget_s and time.perf_counter() - t_start > a.budget_s:
            print(f"== budget of {a.budget_s}s spent; skipped {r}", flush=True)
            continue
        run = {**BASE, **r, **over}
        res = train_run(run, a.device)
        with open(a.out, "a") as f:
            f.write(json.dumps(res) + "\n")
        fin = res["final"]
        print(f"== {r} -> " + " ".join(f"{k}={v}" for k, v in fin.items()), flush=True)


if __name__ == "__main__":
    main()
