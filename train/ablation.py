"""`make ablation`: every method of docs/RESULTS.md on one embedded world, same budget, several seeds.

    python -m train.ablation [--seeds 5] [--methods clip,default,...] [--steps N] [--jobs J] [--quick]

The methods and the budget are a data file, `train/configs/ablation.toml`: each method is a table of
`train run` options applied over the trainer's defaults (`default` is the defaults themselves). One
world and one shard set are built once (kgaug synth -> kgaug build -> clusterbuild shard, via the
demo's stages); then each (method, seed) is a `train run --config`, evaluated on the held-out
SugarCrepe-format subsets, the same subsets on training scenes (`seen_*`), zero-shot shape/colour and
the bias probe. Snapshots of latest.pt give the accuracy-vs-step curves. Writes the generated block of
docs/RESULTS.md (tables, the goal check, curves) and docs/results.json ({budget, seeds, default,
methods: {name: {config, metric: {mean, std, per_seed}}}}). Finished runs (eval JSON present, same
config) are reused, so an interrupted ablation resumes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kgclip.atomic import atomic_write_text
from train import demo
from train import results as result_tables

REGISTRY = demo.REGISTRY
RECORD_FILE = "ablation_runs.jsonl"  # every finished run, in the docs folder (--reuse-recorded)
registry, size_of = demo.registry, demo.size_of
START, END = "<!-- ablation:start (written by python -m train.ablation) -->", "<!-- ablation:end -->"
BINDING = ("swap_att", "swap_obj", "replace_obj")  # the issue's binding mean (replace_rel reported apart)
METRICS = (*result_tables.SUBSETS, *result_tables.ZEROSHOT, "bias_gap")


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
    from train import eval as evaluation

    ev = world_dir / "eval"
    res = evaluation.evaluate(checkpoint, None, sugarcrepe=ev / "sugarcrepe", images=ev / "images",
                     zeroshot=ev / "zeroshot_shape", device=device)
    out = result_tables.results_from_eval(res["sugarcrepe"])
    out["zeroshot_shape"] = float(res["zeroshot"]["top1"])
    out["zeroshot_colour"] = float(evaluation.evaluate(checkpoint, None, zeroshot=ev / "zeroshot_colour",
                                              device=device)["zeroshot"]["top1"])
    seen = ev / "seen"
    if (seen / "sugarcrepe").is_dir():  # the same subsets on training scenes: memorised pairs
        res = evaluation.evaluate(checkpoint, None, sugarcrepe=seen / "sugarcrepe", images=seen / "images", device=device)
        out.update({f"seen_{k}": v for k, v in result_tables.results_from_eval(res["sugarcrepe"]).items()})
    return out


def snapshot_step(path: Path) -> int | None:
    import torch

    ck = torch.load(path, map_location="cpu", weights_only=True)
    return ck.get("step") if isinstance(ck.get("step"), int) else None


def resolved_options(config: dict[str, Any]) -> dict[str, Any]:
    """Every training option the method's overrides resolve to (defaults included): a finished run is
    reused only if this is unchanged, so a changed default retrains the methods that inherit it."""
    from train import config as train_config

    d = train_config.from_dict(config, train_config.TrainConfig()).to_dict()
    for k in ("shards", "out", "seed", "steps", "batch_size", "device", "model", "save_every", "resume", "workers"):
        d.pop(k, None)
    return d


def one_run(ch: demo.Chain, shards: Path, world_dir: Path, model_json: Path, method: str, config: dict[str, Any],
            seed: int, size: dict[str, Any], device: str, points: int, table_id: str,
            finished_only: bool = False) -> dict[str, Any] | None:
    """Train and evaluate one (method, seed); reused when its eval JSON exists for the same config, budget
    and training table (`table_id`: a run trained on negatives an older kgaug made is not this table's).
    With `finished_only`, a run that is not finished is left out (None) instead of trained."""
    run_dir = ch.out / "runs" / f"{method}-s{seed}"
    done = run_dir / "ablation_eval.json"
    resolved = resolved_options(config)
    if done.is_file():
        old = json.loads(done.read_text())
        if old.get("resolved") == resolved and old.get("size") == size and old.get("table") == table_id:
            ch.say(f"{method} seed {seed}: reusing {done}")
            return dict(old, reused=True)
    if finished_only:
        ch.say(f"{method} seed {seed}: not finished, left out (--finished-only)")
        return None
    if run_dir.exists():
        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    cfg_file = run_dir / "method.json"
    result_tables.write_json(cfg_file, config)
    started = time.perf_counter()
    snap = Snapshots(run_dir)
    snap.start()
    try:
        with demo.Progress(ch, run_dir, f"{method} seed {seed}", size["steps"]):
            ch.cli("train", "run", str(shards), "--out", str(run_dir), "--config", str(cfg_file), "--model",
                   str(model_json), "--steps", str(size["steps"]), "--batch-size", str(size["batch_size"]),
                   "--seed", str(seed), "--device", device, "--save-every", str(max(1, size["steps"] // points)),
                   "--quiet")
    finally:
        snap.stop.set()
        snap.join()
    seconds = round(time.perf_counter() - started, 1)
    final = evaluate(run_dir, world_dir, device)
    curve = []
    for p in sorted((run_dir / "snapshots").glob("*.pt")):
        step = snapshot_step(p)
        if step is None or step >= size["steps"]:
            continue
        curve.append({"step": step, **{k: v for k, v in evaluate(p, world_dir, device).items()
                                       if k in result_tables.RESULT_KEYS}})
    shutil.rmtree(run_dir / "snapshots", ignore_errors=True)
    curve.append({"step": size["steps"], **{k: v for k, v in final.items() if k in result_tables.RESULT_KEYS}})
    b = demo.stage_bias(ch, run_dir, world_dir, device)
    if b:
        final["bias_gap"] = b["gap"]
    res = {"method": method, "seed": seed, "config": config, "resolved": resolved, "size": size,
           "table": table_id, "final": final, "curve": curve, "train_seconds": seconds}
    result_tables.write_json(done, res)
    ch.say(f"{method} seed {seed}: " + " ".join(f"{k}={v:.3f}" for k, v in final.items() if not k.startswith("seen")))
    return res


def table_fingerprint(table: Path) -> str:
    """What a run trained on, in 16 hex digits: the table's rows (key, captions, pseudo-captions, hard
    negatives) in key order. A kgaug that makes other negatives for the world gives another one."""
    from kgaug.table import read_rows

    h = hashlib.sha256()
    cols = ["key", "captions", "pseudo_captions", "hard_negatives"]
    rows = sorted(read_rows(table, columns=cols), key=lambda r: r["key"])
    for r in rows:
        h.update(json.dumps([r["key"], r["captions"], r["pseudo_captions"], r["hard_negatives"]],
                            sort_keys=True).encode())
    return h.hexdigest()[:16]


def read_records(path: Path) -> dict[tuple[str, int, str], dict[str, Any]]:
    """{(method, seed, training table): record}: a method and seed may be recorded for several tables."""
    if not path.is_file():
        return {}
    recs = (json.loads(line) for line in path.read_text().splitlines() if line.strip())
    return {(r["method"], r["seed"], r.get("table") or ""): r for r in recs}


def write_records(path: Path, runs: list[dict[str, Any]]) -> None:
    """Every finished run (options, budget, training table, final and curve metrics), one JSON line
    each, merged with the runs recorded earlier for other methods, seeds or tables: what
    `--reuse-recorded` restores."""
    recs = read_records(path)
    for r in runs:
        recs[(r["method"], r["seed"], r.get("table") or "")] = {k: v for k, v in r.items() if k != "reused"}
    atomic_write_text(path, "".join(json.dumps(recs[k], sort_keys=True) + "\n" for k in sorted(recs)))


def restore_records(ch: demo.Chain, path: Path, wanted: set[tuple[str, int]], table_id: str) -> None:
    """Put the runs recorded for this training table back as finished run folders where none exists;
    `one_run` then reuses each only if its resolved options and budget still match."""
    for (method, seed, table), rec in read_records(path).items():
        done = ch.out / "runs" / f"{method}-s{seed}" / "ablation_eval.json"
        if table == table_id and (method, seed) in wanted and not done.is_file():
            done.parent.mkdir(parents=True, exist_ok=True)
            result_tables.write_json(done, rec)


def run_all(ch: demo.Chain, shards: Path, world_dir: Path, model_json: Path, todo: list[tuple[str, dict, int]],
            size: dict[str, Any], device: str, points: int, jobs: int, table_id: str,
            finished_only: bool = False) -> list[dict[str, Any]]:
    """Every (method, seed) run, `jobs` at a time in spawned processes (each with cores/jobs threads:
    these tiny models gain little from a second thread, so two runs side by side finish sooner)."""
    if finished_only or jobs <= 1 or len(todo) <= 1:
        runs = [one_run(ch, shards, world_dir, model_json, m, c, s, size, device, points, table_id, finished_only)
                for m, c, s in todo]
        return [r for r in runs if r is not None]
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    threads = max(1, (os.cpu_count() or 1) // jobs)
    ch.say(f"{len(todo)} runs, {jobs} at a time ({threads} thread(s) each)")
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=demo.worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(one_run, ch, shards, world_dir, model_json, m, c, s, size, device, points, table_id)
                   for m, c, s in todo]
        return [f.result() for f in futures]  # in submission order: the table does not depend on timing


def aggregate(runs: list[dict[str, Any]], methods: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """{method: {"doc", "config", metric: {mean, std, per_seed}}} in registry order."""
    out: dict[str, dict[str, Any]] = {}
    for method in [m for m in methods if any(r["method"] == m for r in runs)]:
        rs = sorted((r for r in runs if r["method"] == method), key=lambda r: r["seed"])
        keys = [k for k in rs[0]["final"] if all(k in r["final"] for r in rs)]
        entry: dict[str, Any] = {"doc": methods[method]["doc"], "config": methods[method]["config"],
                                 "seeds": [r["seed"] for r in rs]}
        for k in keys:
            ms = result_tables.mean_std([r["final"][k] for r in rs])
            entry[k] = {"mean": ms["mean"], "std": ms["std"], "per_seed": ms["seeds"]}
        if all(k in entry for k in BINDING):
            per = [sum(r["final"][k] for k in BINDING) / len(BINDING) for r in rs]
            ms = result_tables.mean_std(per)
            entry["binding_mean"] = {"mean": ms["mean"], "std": ms["std"], "per_seed": ms["seeds"]}
        entry["train_seconds"] = result_tables.mean_std([r.get("train_seconds", 0.0) for r in rs])["mean"]
        out[method] = entry
    return out


def goal_check(table: dict[str, dict[str, Any]], default: str = "default") -> list[str]:
    """The issue's goals, computed from the table: default against clip and against static."""
    if default not in table or "clip" not in table:
        return []
    d, c = table[default], table["clip"]

    def m(e: dict, k: str) -> float:
        return e[k]["mean"] if k in e else float("nan")

    lines = []
    checks = [
        ("binding mean (swap_att, swap_obj, replace_obj) ≥ CLIP + 5 points", m(d, "binding_mean") - m(c, "binding_mean"),
         5.0),
        ("replace_rel ≥ CLIP + 10 points", m(d, "replace_rel") - m(c, "replace_rel"), 10.0),
        ("zero-shot shape no more than 2 points below CLIP", m(d, "zeroshot_shape") - m(c, "zeroshot_shape"), -2.0),
        ("zero-shot colour no more than 2 points below CLIP", m(d, "zeroshot_colour") - m(c, "zeroshot_colour"), -2.0),
    ]
    if "static" in table:
        checks.append(("binding mean ≥ static (NegCLIP's recipe) + 3 points",
                       m(d, "binding_mean") - m(table["static"], "binding_mean"), 3.0))
    for text, diff, need in checks:
        ok = diff * 100 >= need
        lines.append(f"| {text} | {diff * 100:+.1f} | {'met' if ok else 'not met'} |")
    if "bias_gap" in d and "bias_gap" in c:
        gd, gc = abs(m(d, "bias_gap")), abs(m(c, "bias_gap"))
        lines.append(f"| planted-bias gap at most half of CLIP's (\\|{m(d, 'bias_gap'):+.4f}\\| vs \\|{m(c, 'bias_gap'):+.4f}\\|)"
                     f" | ×{gd / gc if gc else float('inf'):.2f} | {'met' if gd <= gc / 2 else 'not met'} |")
    return ["| goal (default vs baseline, mean over seeds) | difference | |", "|---|---|---|", *lines]


def write_results(docs: Path, reg: dict[str, Any], table: dict[str, dict[str, Any]], runs: list[dict[str, Any]],
                  command: str, size: dict[str, Any], seeds: list[int], seconds: float, device: str) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores" if device == "cpu" else device
    budget = dict(reg["budget"], seeds=seeds)
    tables = sorted({r.get("table") or "unrecorded" for r in runs})
    budget["table"] = tables[0] if len(tables) == 1 else tables  # `table_fingerprint` of what they trained on
    result_tables.write_json(docs / "results.json", {
        "budget": budget, "seeds": seeds, "default": "default", "command": command, "device": device,
        "machine": machine, "date": dt.date.today().isoformat(), "methods": table})
    curves: dict[str, list[dict[str, Any]]] = {}
    for method in table:
        rs = [r for r in runs if r["method"] == method]
        steps = sorted({c["step"] for r in rs for c in r["curve"]})
        curves[method] = [{"step": s, **{k: sum(c[k] for r in rs for c in r["curve"] if c["step"] == s and k in c)
                                         / max(1, sum(1 for r in rs for c in r["curve"] if c["step"] == s and k in c))
                                         for k in result_tables.RESULT_KEYS}} for s in steps]
    shown = [m for m in table if m in ("clip", "static", "default")] or list(table)[:3]
    fig = result_tables.plot_curves({m: curves[m] for m in shown}, result_tables.RESULT_KEYS, docs / "figures" / "ablation_curves.png",
                        "held-out accuracy vs step (mean over seeds)")
    n_reused = sum(1 for r in runs if r.get("reused"))
    train_min = sum(r.get("train_seconds", 0.0) for r in runs) / 60
    lines = ["## Ablation table", "",
             f"Command: `{command}`, {dt.date.today().isoformat()}, {machine}; {len(runs)} runs "
             f"({n_reused} reused from an earlier invocation), {train_min:.0f} min of training in all, this "
             f"invocation {seconds / 60:.0f} min. World preset {size['preset']!r}, {size['train']} training images "
             f"at {size['image_size']} px, {size['eval']} held-out scenes per subset; {size['layers']}-layer "
             f"width-{size['width']} ViT + text tower from random init, {size['steps']} steps × batch "
             f"{size['batch_size']}; seeds {seeds} (`n`: the seeds a method has finished). Accuracy in %, mean ± "
             "sample std over seeds; per-seed values "
             "in docs/results.json. `binding` = mean of swap_att, swap_obj, replace_obj; `seen rel` = replace_rel "
             "on training scenes; bias = paired association gap (kgaug/synth/bias.py; 0 = unbiased). Training "
             f"table (`table_fingerprint`): {', '.join(tables)}.", ""]
    keys = ("binding_mean", *result_tables.SUBSETS, *result_tables.ZEROSHOT, "seen_replace_rel", "bias_gap")
    header = ["method", "n", "binding", *result_tables.SUBSETS, "zs shape", "zs colour", "seen rel", "bias"]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for method, e in table.items():
        cells = []
        for k in keys:
            if k not in e:
                cells.append("–")
            elif k == "bias_gap":
                cells.append(f"{e[k]['mean']:+.4f} ± {e[k]['std']:.4f}")
            else:
                cells.append(f"{100 * e[k]['mean']:.1f} ± {100 * e[k]['std']:.1f}")
        lines.append(f"| {method} | {len(e['seeds'])} | " + " | ".join(cells) + " |")
    lines += ["", "What each method is (`train/configs/ablation.toml`; options over the trainer's defaults):", ""]
    for method, e in table.items():
        cfg = ", ".join(f"{k}={json.dumps(v)}" for k, v in e["config"].items()) or "the defaults"
        lines.append(f"- **{method}**: {e['doc']} (`{cfg}`)")
    check = goal_check(table)
    if check:
        lines += ["", "The issue's goals, computed from the table above:", "", *check]
    if fig:
        lines += ["", "![accuracy vs step](figures/ablation_curves.png)"]
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
    p.add_argument("--registry", type=Path, default=REGISTRY, help="methods and budget (TOML)")
    p.add_argument("--work", default="build/ablation", help="world, table, shards and runs")
    p.add_argument("--docs", default="docs", help="where RESULTS.md and results.json go")
    p.add_argument("--methods", default=None, help="comma-separated subset of the registry's methods [all]")
    p.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 [the registry's]")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--points", type=int, default=4, help="curve points per run")
    p.add_argument("--jobs", type=int, default=None,
                   help="runs in parallel, one process each [CPU: number of cores, at most 4; GPU: 1]")
    p.add_argument("--preset", default=None, help="world preset (kgaug/synth/world.json)")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--train-images", type=int, default=None)
    p.add_argument("--finished-only", action="store_true",
                   help="write the table from the runs that have finished; train nothing")
    p.add_argument("--reuse-recorded", action="store_true",
                   help=f"reuse the finished runs recorded in DOCS/{RECORD_FILE} (same options and budget) "
                        "instead of retraining them in a fresh checkout")
    p.add_argument("--quick", action="store_true", help="tiny sizes, 1 seed (smoke test; meaningless numbers)")
    p.add_argument("--device", default="cuda" if demo._cuda() else "cpu")
    a = p.parse_args(argv)
    reg = registry(a.registry)
    size = dict(demo.QUICK) if a.quick else size_of(reg["budget"])
    for key, value in (("steps", a.steps), ("preset", a.preset), ("batch_size", a.batch_size),
                       ("train", a.train_images)):
        if value:
            size[key] = value
    if size["preset"] != "tiny":
        size["context"] = max(size.get("context", 24), 32)  # captions with size and texture words are longer
    names = a.methods.split(",") if a.methods else list(reg["methods"])
    unknown = [m for m in names if m not in reg["methods"]]
    if unknown:
        p.error(f"unknown methods {unknown}; known: {', '.join(reg['methods'])}")
    seeds = list(range(a.seeds if a.seeds else (1 if a.quick else int(reg["budget"].get("seeds", 5)))))
    ch = demo.Chain(Path(a.work))
    ch.out.mkdir(parents=True, exist_ok=True)
    model_json = ch.out / "kgclip-ablation.json"
    model_json.write_text(json.dumps(demo.model_config(size), indent=2) + "\n")
    command = "python -m train.ablation " + " ".join(argv if argv is not None else sys.argv[1:])
    bias = float(reg["budget"].get("bias", 0.8))
    world_dir = demo.stage_synth(ch, size, 0, bias)
    table = demo.stage_build(ch, world_dir, 0)
    shards = demo.stage_shard(ch, table, model_json, size, 0, a.device)
    table_id = table_fingerprint(table)
    ch.say(f"training table {table_id}")
    todo = [(m, reg["methods"][m]["config"], s) for m in names for s in seeds]
    if a.reuse_recorded:
        restore_records(ch, Path(a.docs) / RECORD_FILE, {(m, s) for m, _, s in todo}, table_id)
    jobs = a.jobs or (1 if a.device != "cpu" else max(1, min(4, os.cpu_count() or 1)))
    runs = run_all(ch, shards, world_dir, model_json, todo, size, a.device, a.points, jobs, table_id,
                   a.finished_only)
    docs = Path(a.docs)
    docs.mkdir(parents=True, exist_ok=True)
    write_results(docs, reg, aggregate(runs, reg["methods"]), runs, command.strip(), size, seeds,
                  time.perf_counter() - ch.started, a.device)
    write_records(docs / RECORD_FILE, runs)
    ch.say(f"wrote {docs / 'RESULTS.md'} and {docs / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
