"""Step time of `train run` vs open_clip's own trainer (`open_clip_train.main`), same shards/model/batch.

    .venv/bin/python benchmarks/bench_train.py [--steps 40] [--batch-size 32] [--model kgclip-tiny-64]

Both trainers read the same WebDataset shards (built here from ../shared/data/coco_val2017_mini when
present, else from random-noise images), with 1 DataLoader worker each, fp32 on CPU. open_clip's
trainer needs webdataset 0.2.86 (`make test-assets` puts it in .cache/webdataset-0.2.86), and only
knows registered model names, hence the small wrapper. Per-step wall time: open_clip's own
"Batch (t)" log (data + step), ours from metrics.jsonl (n_images / images_per_s, data + step);
the first steps (warm-up, worker start) are dropped. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
WDS_OLD = ROOT / ".cache" / "webdataset-0.2.86"
COCO = ROOT.parent / "shared" / "data" / "coco_val2017_mini"
SKIP = 5

OPEN_CLIP_WRAPPER = (
    "import sys, open_clip; open_clip.add_model_config(sys.argv.pop(1)); "
    "from open_clip_train.main import main; main(sys.argv[1:])"
)


def make_shards(folder: Path, n: int) -> list[str]:
    import numpy as np
    from PIL import Image

    from clusterbuild import contract, shardio

    rng = np.random.default_rng(0)
    caps: dict[int, list[str]] = {}
    files: list[Path] = []
    if COCO.exists():
        ann = json.loads((COCO / "captions_val2017_subset.json").read_text())
        for a in ann["annotations"]:
            caps.setdefault(a["image_id"], []).append(a["caption"].strip())
        ims = sorted(ann["images"], key=lambda im: im["file_name"])
        files = [COCO / "images" / im["file_name"] for im in ims]
        capl = [sorted(caps.get(im["id"], ["a photo"])) for im in ims]
    samples = []
    for i in range(n):
        if files:
            with Image.open(files[i % len(files)]) as im:
                im = im.convert("RGB")
                im.thumbnail((128, 128))
            cs = capl[i % len(files)]
        else:
            im = Image.fromarray(rng.integers(0, 255, (96, 96, 3), dtype=np.uint8))
            cs = [f"a noisy picture number {i}", f"random pixels {i}"]
        buf = io.BytesIO()
        im.save(buf, "JPEG", quality=85)
        first = cs[0].rstrip(". ")
        negs = [{"type": "add_obj", "text": f"{first} next to a purple giraffe", "from": "", "to": "giraffe"},
                {"type": "add_att", "text": first.replace(" ", " striped ", 1), "from": "", "to": "striped"}]
        key = f"s{i:06d}"
        meta = contract.make_meta(key, "coco", cs, [{"text": "a photo of " + first, "facts": []}], negs, cluster_id=i // 8)
        samples.append(contract.Sample(key, buf.getvalue(), "jpg", cs[0], meta))
    shardio.write_shard_set(folder, samples, samples_per_shard=32)
    return sorted(str(p) for p in contract.list_shards(folder))


def run_open_clip(shards: list[str], args, tmp: Path, siglip: bool) -> list[float]:
    from clusterbuild import contract

    name = "oc-siglip" if siglip else "oc-clip"
    pattern = str(Path(shards[0]).parent / contract.brace_pattern([Path(s).name for s in shards]))
    n = args.steps * args.batch_size
    cmd = [sys.executable, "-c", OPEN_CLIP_WRAPPER, str(ROOT / "kgclip" / "model_configs"),
           "--train-data", pattern, "--dataset-type", "webdataset", "--train-num-samples", str(n),
           "--batch-size", str(args.batch_size), "--epochs", "1", "--model", args.model, "--workers", "1",
           "--lr", "5e-4", "--warmup", "10", "--logs", str(tmp / "oc_logs"), "--name", name,
           "--log-every-n-steps", "1", "--save-frequency", "0", "--seed", "0", "--precision", "fp32"]
    if siglip:
        cmd.append("--siglip")
    env = dict(os.environ, PYTHONPATH=f"{WDS_OLD}:{ROOT}", HF_HUB_OFFLINE="1")
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    log = (tmp / "oc_logs" / name / "out.log").read_text()
    return [float(x) for x in re.findall(r"Batch \(t\): ([0-9.]+)", log)]


def run_ours(shards: list[str], args, tmp: Path, name: str, **opts) -> list[float]:
    out = tmp / name
    cmd = [sys.executable, "-m", "train.cli", "run", *shards, "--out", str(out), "--model", args.model,
           "--steps", str(args.steps), "--batch-size", str(args.batch_size), "--workers", "1",
           "--save-every", str(10 * args.steps), "--seed", "0", "--overwrite", "--quiet"]
    for k, v in opts.items():
        cmd += [f"--{k.replace('_', '-')}", str(v)]
    conf = tmp / f"{name}.toml"
    conf.write_text("plots = false\nexport = false\n")
    cmd += ["--config", str(conf)]
    subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=ROOT,
                   env=dict(os.environ, HF_HUB_OFFLINE="1"))
    recs = [json.loads(ln) for ln in (out / "metrics.jsonl").read_text().splitlines()]
    return [r["n_images"] / r["images_per_s"] for r in recs]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--model", default="kgclip-tiny-64")
    args = ap.parse_args()
    if not (WDS_OLD / "webdataset").exists():
        sys.exit(f"webdataset 0.2.86 missing in {WDS_OLD}: run `make test-assets`")
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        shards = make_shards(tmp / "shards", args.steps * args.batch_size)
        rows = []
        oc_clip = run_open_clip(shards, args, tmp, siglip=False)
        oc_sig = run_open_clip(shards, args, tmp, siglip=True)
        same_texts = {"positives": 1, "negatives_per_sample": 0}
        runs = [
            ("clip, none, random", oc_clip, dict(loss="clip", negatives="none", batching="random", **same_texts)),
            ("siglip, none, random", oc_sig, dict(loss="siglip", negatives="none", batching="random", **same_texts)),
            ("fair-siglip, ahnm, cluster (1 text/image)", oc_sig,
             dict(loss="fair-siglip", negatives="ahnm", batching="cluster", **same_texts)),
            ("fair-clip, ahnm, cluster (1 text/image)", oc_clip,
             dict(loss="fair-clip", negatives="ahnm", batching="cluster", **same_texts)),
            ("defaults: fair-clip, ahnm, cluster, 1 pos + 2 KG neg/image", oc_clip, {}),
        ]
        for i, (label, ref, opts) in enumerate(runs):
            ours = run_ours(shards, args, tmp, f"ours{i}", **opts)
            r = statistics.median(ref[SKIP:])
            o = statistics.median(ours[SKIP:])
            rows.append((label, o, r, o / r))
    print(f"model {args.model}, batch {args.batch_size}, {args.steps} steps, CPU fp32, median s/step "
          f"after {SKIP} warm-up steps")
    print("| train run config | ours s/step | open_clip s/step | ratio |")
    print("|---|---|---|---|")
    for label, o, r, ratio in rows:
        print(f"| {label} | {o:.4f} | {r:.4f} | {ratio:.2f}x |")


if __name__ == "__main__":
    main()
