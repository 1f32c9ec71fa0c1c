"""clusterbuild speed against the bare libraries doing the same work, in one run.

    .venv/bin/python benchmarks/bench_clusterbuild.py [--n-kmeans 100000 --dim 256 --k 200] [--json OUT]

Three ratios (goals from issue 4):
- k-means: `cluster.spherical_kmeans` (normalise + train + assign all) vs bare `faiss.Kmeans(spherical)`
  train + assign on the same matrix; time ratio ours/bare, goal <= 1.1.
- shard writing: `shardio.write_shard` (tar + parquet + _stats.json, atomic, fsync) vs webdataset's
  `ShardWriter` on the same samples; throughput ratio ours/bare, goal >= 0.8.
- embedding: `embed.embed_rows` (guarded decode, chunk cache) vs a bare open_clip loop (PIL open,
  preprocess, encode_image / tokenize, encode_text); throughput ratio ours/bare, goal >= 0.9.
Each side runs once untimed (imports, allocator warm-up), then `--repeats` times alternately;
the best time of each is used.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def best_of(repeats: int, *fns):
    """One untimed warm-up each (imports, first-call setup), then alternate runs; best time of each."""
    for fn in fns:
        fn()
    best = [float("inf")] * len(fns)
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            best[i] = min(best[i], time.perf_counter() - t)
    return best


def bench_kmeans(n: int, dim: int, k: int, niter: int, repeats: int) -> dict:
    import faiss

    from clusterbuild import cluster

    x = np.random.default_rng(0).normal(size=(n, dim)).astype(np.float32)

    def ours():
        cluster.spherical_kmeans(x, k, niter=niter, seed=1)

    def bare():
        xn = x.copy()
        faiss.normalize_L2(xn)
        km = faiss.Kmeans(dim, k, niter=niter, seed=1, spherical=True)
        km.train(xn)
        km.index.search(xn, 1)

    t_ours, t_bare = best_of(repeats, ours, bare)
    return {"n": n, "dim": dim, "k": k, "niter": niter, "ours_s": t_ours, "bare_s": t_bare,
            "ratio_time_ours_over_bare": t_ours / t_bare, "goal": "<= 1.1"}


def _jpeg(i: int, side: int) -> bytes:
    from PIL import Image

    rng = np.random.default_rng(i)
    im = Image.fromarray(rng.integers(0, 255, (side // 8, side // 8, 3), dtype=np.uint8)).resize((side, side))
    buf = io.BytesIO()
    im.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def bench_write(n: int, per_shard: int, repeats: int, tmp: Path) -> dict:
    import webdataset as wds

    from clusterbuild import contract, shardio

    imgs = [_jpeg(i, 256) for i in range(64)]
    samples = []
    for i in range(n):
        key = f"s{i:07d}"
        meta = contract.make_meta(key, "bench", [f"caption {i}"], [{"text": f"pseudo {i}", "facts": ["a(b)"]}],
                           [{"type": "swap_att", "text": f"neg {i}", "from": "a", "to": "b"}], cluster_id=i % 7,
                           knn=[f"s{(i + 1) % n:07d}"])
        samples.append(contract.Sample(key, imgs[i % len(imgs)], "jpg", f"caption {i}", meta))
    total_bytes = sum(len(s.image) for s in samples)

    def ours():
        d = tmp / "ours"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        for j in range(0, n, per_shard):
            shardio.write_shard(d, j // per_shard, samples[j:j + per_shard])

    def bare():
        d = tmp / "bare"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        with wds.ShardWriter(str(d / "%06d.tar"), maxcount=per_shard, verbose=0) as w:
            for s in samples:
                w.write({"__key__": s.key, "jpg": s.image, "txt": s.txt, "json": s.meta,
                         "cls": s.meta["cluster_id"]})

    t_ours, t_bare = best_of(repeats, ours, bare)
    return {"samples": n, "per_shard": per_shard, "image_mb": total_bytes / 1e6,
            "ours_samples_per_s": n / t_ours, "bare_samples_per_s": n / t_bare,
            "ratio_throughput_ours_over_bare": t_bare / t_ours, "goal": ">= 0.8",
            "webdataset": wds.__version__}


def bench_embed(n: int, model: str, batch: int, repeats: int, tmp: Path, workers: int = 0,
                device: str = "cpu") -> dict:
    import open_clip
    import torch
    from PIL import Image

    from clusterbuild import embed as embedding
    from kgclip import models

    img_dir = tmp / "imgs"
    img_dir.mkdir(exist_ok=True)
    paths = []
    for i in range(n):
        p = img_dir / f"{i:05d}.jpg"
        p.write_bytes(_jpeg(i, 320))
        paths.append(p)
    texts = [[f"a photo number {i} of a red ball", f"ball left of box {i}"] for i in range(n)]
    rows = [embedding.EmbedRow(f"k{i}", str(p), ((texts[i][0], embedding.KIND_CAPTION), (texts[i][1], embedding.KIND_PSEUDO)))
            for i, p in enumerate(paths)]
    torch.manual_seed(0)
    loaded = models.create(model)
    m, pre, tok = loaded.model.to(device).eval(), loaded.preprocess, open_clip.get_tokenizer(loaded.name)
    flat = [t for pair in texts for t in pair]

    def ours():
        cache = tmp / "cache"
        shutil.rmtree(cache, ignore_errors=True)
        embedding.embed_rows(rows, loaded, cache, device=device, batch_size=batch, workers=workers, progress=False,
                     log=lambda _m: None)

    def bare():
        outs = []
        with torch.inference_mode():
            for j in range(0, n, batch):
                x = torch.stack([pre(Image.open(p).convert("RGB")) for p in paths[j:j + batch]]).to(device)
                outs.append(torch.nn.functional.normalize(m.encode_image(x), dim=-1).half().cpu().numpy())
            for j in range(0, len(flat), batch):
                outs.append(torch.nn.functional.normalize(m.encode_text(tok(flat[j:j + batch]).to(device)), dim=-1)
                            .half().cpu().numpy())
        return outs

    t_ours, t_bare = best_of(repeats, ours, bare)
    return {"images": n, "texts": len(flat), "model": model, "batch": batch,
            "ours_images_per_s": n / t_ours, "bare_images_per_s": n / t_bare,
            "ratio_throughput_ours_over_bare": t_bare / t_ours, "goal": ">= 0.9",
            "device": device, "decode_workers": workers, "torch_threads": torch.get_num_threads()}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-kmeans", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=256)
    ap.add_argument("--k", type=int, default=200)
    ap.add_argument("--niter", type=int, default=20)
    ap.add_argument("--n-write", type=int, default=4000)
    ap.add_argument("--per-shard", type=int, default=1000)
    ap.add_argument("--n-embed", type=int, default=256)
    ap.add_argument("--model", default="kgclip-small-64")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--workers", type=int, default=0, help="our decode workers (the bare loop has none)")
    ap.add_argument("--device", default="cpu", help="torch device for the embedding comparison")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    a = ap.parse_args(argv)
    import faiss
    import torch

    res = {"machine": {"cpus": __import__("os").cpu_count(), "faiss_threads": faiss.omp_get_max_threads(),
                       "torch_threads": torch.get_num_threads()}}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        res["kmeans"] = bench_kmeans(a.n_kmeans, a.dim, a.k, a.niter, a.repeats)
        print(json.dumps({"kmeans": res["kmeans"]}), flush=True)
        res["write"] = bench_write(a.n_write, a.per_shard, a.repeats, tmp)
        print(json.dumps({"write": res["write"]}), flush=True)
        res["embed"] = bench_embed(a.n_embed, a.model, a.batch, a.repeats, tmp, a.workers, a.device)
        print(json.dumps({"embed": res["embed"]}), flush=True)
    if a.json:
        a.json.write_text(json.dumps(res, indent=2) + "\n")
    return res


if __name__ == "__main__":
    main()
