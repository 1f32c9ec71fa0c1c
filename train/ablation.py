"""`make ablation`: every method of docs/RESULTS.md on one embedded world, same budget, several seeds.

    python -m train.ablation [--seeds 3] [--methods clip,full,...] [--steps N] [--quick] [--device cuda]

One world and one shard set are built once (kgaug synth -> kgaug build -> clusterbuild shard, via the
demo's stages); then each (method, seed) is a `train run` with the method's flags below, evaluated on
the held-out SugarCrepe-format subsets, zero-shot shape/colour and the bias probe. Intermediate
checkpoints (snapshots of latest.pt taken while the run writes them) give the accuracy-vs-step
curves. Writes docs/RESULTS.md (table + command + curves) and docs/results.json
({method: {metric: {mean, std, seeds}}}). Runs already finished (eval JSON present) are reused, so an
interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

from train import demo as D
from train import report as R

# Each method as `train run` flags (train/config.py). "pseudo" = pseudo-captions as extra positives:
# the trainer draws --positives - 1 extra positive texts per image from its other captions and its
# pseudo-captions together, so --positives 1 is "no pseudo-captions" and 2 is "with".
BASE_CLIP = ["--loss", "clip", "--negatives", "none", "--batching", "random", "--positives", "1"]
METHODS: dict[str, list[str]] = {
    "clip": BASE_CLIP,
    "siglip": ["--loss", "siglip", "--negatives", "none", "--batching", "random", "--positives", "1"],
    "static": ["--loss", "clip", "--negatives", "static", "--batching", "random", "--positives", "1"],
    "ahnm": ["--loss", "clip", "--negatives", "ahnm", "--batching", "random", "--positives", "1"],
    "cluster": ["--loss", "clip", "--negatives", "none", "--batching", "cluster", "--positives", "1"],
    "pseudo": ["--loss", "clip", "--negatives", "none", "--batching", "random", "--positives", "2"],
    "full": ["--loss", "fair-siglip", "--negatives", "ahnm", "--batching", "cluster", "--positives", "2"],
    "full-no-ahnm": ["--loss", "fair-siglip", "--negatives", "static", "--batching", "cluster", "--positives", "2"],
    "full-no-cluster": ["--loss", "fair-siglip", "--negatives", "ahnm", "--batching", "random", "--positives", "2"],
    "full-no-fair": ["--loss", "fair-siglip", "--negatives", "ahnm", "--batching", "cluster", "--positives", "2",
                     "--fair-lambda", "0"],
    "full-no-pseudo": ["--loss", "fair-siglip", "--negatives", "ahnm", "--batching", "cluster", "--positives", "1"],
    # extra rows: the full method with the fair loss on InfoNCE instead of the sigmoid, and with a
    # weaker / stronger fair term than the default λ = 10 (docs/RESULTS.md: λ = 0.1, the first default,
    # adds ~0.004 to a sigmoid loss of ~11 in this world and leaves the planted bias in place)
    "full-clip": ["--loss", "fair-clip", "--negatives", "ahnm", "--batching", "cluster", "--positives", "2"],
    "full-fair0.1": ["--loss", "fair-siglip", "--negatives", "ahnm", "--batching", "cluster", "--positives", "2",
                     "--fair-lambda", "0.1"],
    "full-fair100": ["--loss", "fair-siglip", "--negatives", "ahnm", "--batching", "cluster", "--positives", "2",
                     "--fair-lambda", "100"],
}
# CPU default: the demo's world, model and budget (240 steps x batch 64), where the diagnosis runs of
# docs/RESULTS.md saw 10-25 point differences between methods; 12 methods x 3 seeds fit in ~2 h on 2
# cores with --jobs 2. On a GPU raise it: --preset small --steps 3000 --batch-size 256 --train-images 20000.
ABLATION = dict(D.DEMO)
START, END = "<!-- ablation:start (written by python -m train.ablation) -->", "<!-- ablation:end -->"


class Snapshots(threading.Thread):
    """Copies OUT/latest.pt to OUT/snapshots/<n>.pt each time the trainer replaces it (atomic rename,
    so a copy is always a whole checkpoint)."""

    def __init__(self, run_dir: Path, every_s: float = 0.5):
        super().__init__(daemon=True)
        self.run_dir, self.every_s, self.stop, self.n = run_dir, every_s, threading.Event(), 0

    def run(self) -> None:
        latest, seen = self.run_dir / "latest.pt", None
        (self.run_dir / "snapshots").mkdir(parents=True, exist_ok=True)
        while not self.stop.wait(self.every_s):
            try:
                st = latest.stat()
            except FileNotFoundError:
                continue
            if (st.st_mtime_ns, st.st_ino) != seen:
                seen = (st.st_mtime_ns, st.st_ino)
                shutil.copyfile(latest, self.run_dir / "snapshots" / f"{self.n:04d}.pt")
                self.n += 1


def evaluate(checkpoint: Path, world_dir: Path, device: str) -> dict[str, float]:
    from train import eval as E

    ev = world_dir / "eval"
    res = E.evaluate(checkpoint, None, sugarcrepe=ev / "sugarcrepe", images=ev / "images",
                     zeroshot=ev / "zeroshot_shape", device=device)
    out = R.results_from_eval(res["sugarcrepe"])
    out["zeroshot_shape"] = float(res["zeroshot"]["top1"])
    out["zeroshot_colour"] = float(E.evaluate(checkpoint, None, zeroshot=ev / "zeroshot_colour",
                                              device=device)["zeroshot"]["top1"])
    return out


def snapshot_step(path: Path) -> int | None:
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=True)
    for k in ("step", "global_step"):
        if isinstance(ck.get(k), int):
            return ck[k]
    st = ck.get("state") or ck.get("train_state") or {}
    return st.get("step") if isinstance(st, dict) else None


def one_run(ch: D.Chain, shards: Path, world_dir: Path, model_json: Path, method: str, seed: int,
            size: dict[str, Any], device: str, points: int) -> dict[str, Any]:
    run_dir = ch.out / "runs" / f"{method}-s{seed}"
    done = run_dir / "ablation_eval.json"
    if done.is_file():
        ch.say(f"{method} seed {seed}: reusing {done}")
        return dict(json.loads(done.read_text()), reused=True)
    if run_dir.exists():
        shutil.rmtree(run_dir)
    started = time.perf_counter()
    snap = Snapshots(run_dir)
    snap.start()
    try:
        with D.Progress(ch, run_dir, f"{method} seed {seed}", size["steps"]):
            ch.cli("train", "run", str(shards), "--out", str(run_dir), "--model", str(model_json),
                   "--steps", str(size["steps"]), "--batch-size", str(size["batch_size"]), "--seed", str(seed),
                   "--device", device, "--save-every", str(max(1, size["steps"] // points)), *METHODS[method])
    finally:
        snap.stop.set()
        snap.join()
    final = evaluate(run_dir, world_dir, device)
    curve = []
    for p in sorted((run_dir / "snapshots").glob("*.pt")):
        step = snapshot_step(p)
        if step is None or step >= size["steps"]:
            continue
        curve.append({"step": step, **evaluate(p, world_dir, device)})
    curve.append({"step": size["steps"], **final})
    b = D.stage_bias(ch, run_dir, world_dir, device)
    if b:
        final["bias"] = b["gap"]
    res = {"method": method, "seed": seed, "final": final, "curve": curve,
           "seconds": round(time.perf_counter() - started, 1)}
    R.write_json(done, res)
    ch.say(f"{method} seed {seed}: " + " ".join(f"{k}={v:.3f}" for k, v in final.items()))
    return res


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def run_all(ch: D.Chain, shards: Path, world_dir: Path, model_json: Path, todo: list[tuple[str, int]],
            size: dict[str, Any], device: str, points: int, jobs: int) -> list[dict[str, Any]]:
    """Every (method, seed) run, `jobs` at a time in spawned processes (each with cores/jobs threads:
    these tiny models gain little from a second thread, so two runs side by side finish sooner)."""
    if jobs <= 1 or len(todo) <= 1:
        return [one_run(ch, shards, world_dir, model_json, m, s, size, device, points) for m, s in todo]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // jobs)
    ch.say(f"{len(todo)} runs, {jobs} at a time ({threads} thread(s) each)")
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(one_run, ch, shards, world_dir, model_json, m, s, size, device, points)
                   for m, s in todo]
        return [f.result() for f in futures]  # in submission order: the table does not depend on timing


def aggregate(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for method in dict.fromkeys(r["method"] for r in runs):
        rs = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
        keys = [k for k in (*R.RESULT_KEYS, "bias") if all(k in r["final"] for r in rs)]
        out[method] = {k: R.mean_std([r["final"][k] for r in rs]) for k in keys}
    return out


def _reused_note(runs: list[dict[str, Any]]) -> str:
    n = sum(1 for r in runs if r.get("reused"))
    return f"; {n} of {len(runs)} runs reused from an earlier invocation, not timed here" if n else ""


def write_results(docs: Path, table: dict[str, dict[str, Any]], runs: list[dict[str, Any]], command: str,
                  size: dict[str, Any], seconds: float, device: str) -> None:
    R.write_json(docs / "results.json", table)
    curves: dict[str, list[dict[str, Any]]] = {}
    for method in table:
        rs = [r for r in runs if r["method"] == method]
        steps = sorted({c["step"] for r in rs for c in r["curve"]})
        curves[method] = [{"step": s, **{k: sum(c[k] for r in rs for c in r["curve"] if c["step"] == s and k in c)
                                         / max(1, sum(1 for r in rs for c in r["curve"] if c["step"] == s and k in c))
                                         for k in R.RESULT_KEYS}} for s in steps]
    fig = R.plot_curves(curves, R.RESULT_KEYS, docs / "figures" / "ablation_curves.png",
                        "held-out accuracy vs step (mean over seeds)")
    lines = ["## Ablation table", "",
             f"Command: `{command}` ({seconds / 60:.1f} min on {device}{_reused_note(runs)}). "
             f"World preset {size['preset']!r}, "
             f"{size['train']} training images at {size['image_size']} px, {size['eval']} held-out scenes; "
             f"{size['layers']}-layer width-{size['width']} ViT + text tower, {size['steps']} steps × batch "
             f"{size['batch_size']}; mean ± std over seeds, accuracy in %, bias = paired association gap "
             "(kgaug/synth/bias.py; 0 = unbiased).", ""]
    rows = R.results_table(table, (*R.RESULT_KEYS, "bias"))
    lines += ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    lines += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    if fig:
        lines += ["", "![accuracy vs step](figures/ablation_curves.png)"]
    lines += ["", "Readings are written by hand outside this generated block."]
    block = f"{START}\n" + "\n".join(lines) + f"\n{END}\n"
    path = docs / "RESULTS.md"
    old = path.read_text() if path.is_file() else ""
    if START in old and END in old:  # replace only the generated block; hand-written readings stay
        new = old[: old.index(START)] + block + old[old.index(END) + len(END) + 1:]
    else:
        new = (old.rstrip() + "\n\n" if old else "") + block
    path.write_text(new)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="build/ablation", help="world, table, shards and runs")
    p.add_argument("--docs", default="docs", help="where RESULTS.md and results.json go")
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--points", type=int, default=3, help="curve points per run")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs in parallel, one process each [CPU: number of cores, at most 4; GPU: 1]")
    p.add_argument("--preset", default=None, help="world preset (kgaug/synth/world.json) [tiny]")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--train-images", type=int, default=None)
    p.add_argument("--bias", type=float, default=0.8)
    p.add_argument("--quick", action="store_true", help="tiny sizes, 2 methods, 1 seed (smoke test)")
    p.add_argument("--device", default="cuda" if D._cuda() else "cpu")
    a = p.parse_args(argv)
    size = dict(D.QUICK if a.quick else ABLATION)
    for key, value in (("steps", a.steps), ("preset", a.preset), ("batch_size", a.batch_size),
                       ("train", a.train_images)):
        if value:
            size[key] = value
    if size["preset"] != "tiny":
        size["context"] = 32  # captions with size and texture words are longer
    methods = a.methods.split(",")
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
    seeds = 1 if a.quick and a.seeds == 3 else a.seeds
    ch = D.Chain(Path(a.work))
    ch.out.mkdir(parents=True, exist_ok=True)
    model_json = ch.out / "kgclip-ablation.json"
    model_json.write_text(json.dumps(D.model_config(size), indent=2) + "\n")
    command = "python -m train.ablation " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    try:
        world_dir = D.stage_synth(ch, size, 0, a.bias)
        table = D.stage_build(ch, world_dir, 0)
        shards = D.stage_shard(ch, table, model_json, size, 0, a.device)
        todo = [(m, s) for m in methods for s in range(seeds)]
        jobs = a.jobs or (1 if a.device != "cpu" else max(1, min(4, os.cpu_count() or 1)))
        runs = run_all(ch, shards, world_dir, model_json, todo, size, a.device, a.points, jobs)
    except D.StageMissing as e:
        ch.say(f"STOPPED: {e}. The ablation needs kgaug build, clusterbuild shard and train run.")
        return 0
    docs = Path(a.docs)
    docs.mkdir(parents=True, exist_ok=True)
    write_results(docs, aggregate(runs), runs, command.strip(), size, time.perf_counter() - ch.started, a.device)
    ch.say(f"wrote {docs / 'RESULTS.md'} and {docs / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
