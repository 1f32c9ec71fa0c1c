"""`make demo`: the whole chain on the embedded world, the default method vs plain CLIP, on a CPU.

    synth -> kgaug build --source vg -> clusterbuild shard -> train run (full, clip) -> train eval -> report

Every stage is the ordinary command, run in this process through its Typer app (torch loads once;
each stage prints its own progress). A stage that reports "not built yet" ends the demo with exit 0 and a clear
list of what ran and what did not. Outputs: demo/report.md, demo/report.html, demo/results.json.

    python -m train.demo [--out demo] [--quick] [--steps N] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kgclip import page
from train import results as result_tables

CLI_MAIN = {"kgaug": "kgaug.cli", "clusterbuild": "clusterbuild.cli", "train": "train.cli"}

# The world, model, budget and methods of `make demo` and `make ablation`: one data file, so the demo
# shows the default against CLIP exactly as the ablation measured them (docs/RESULTS.md).
REGISTRY = Path(__file__).with_name("configs") / "ablation.toml"
QUICK = dict(preset="tiny", train=96, eval=24, zeroshot_per_class=4, image_size=32,
             steps=3, batch_size=16, width=32, layers=1, patch=8, context=24)
DEMO_METHODS = ("default", "clip")


def registry(path: Path = REGISTRY) -> dict[str, Any]:
    """{"budget": {...}, "methods": {name: {"doc": str, "config": {train run options}}}} from the TOML."""
    from train import config as train_config

    data = train_config.load_file(path)
    methods = {}
    for name, table in data.get("methods", {}).items():
        table = dict(table)
        doc = str(table.pop("doc", ""))
        train_config.from_dict(table, train_config.TrainConfig(), f"{path} [methods.{name}]").validate()  # unknown keys fail here
        methods[name] = {"doc": doc, "config": table}
    missing = [m for m in DEMO_METHODS if m not in methods]
    if missing:
        raise ValueError(f"{path}: the registry needs the methods {missing}")
    return {"budget": dict(data["budget"]), "methods": methods}


def size_of(budget: dict[str, Any]) -> dict[str, Any]:
    """The size dict (world, model, budget) from the registry's [budget] table."""
    keys = ("preset", "train", "eval", "zeroshot_per_class", "image_size", "steps", "batch_size", "width", "layers",
            "patch", "context")
    return {k: budget[k] for k in keys}


DEMO = size_of(registry()["budget"])


@dataclass
class Chain:
    out: Path
    log: list[str] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def say(self, msg: str) -> None:
        line = f"[demo {time.perf_counter() - self.started:6.1f}s] {msg}"
        print(line, flush=True)
        self.log.append(line)

    def cli(self, tool: str, *args: str) -> None:
        """Run `tool args` in this process through the tool's own Typer app (so torch and open_clip
        load once, and the stage's progress prints as it goes)."""
        import importlib

        import typer

        self.say(f"$ {tool} {' '.join(args)}")
        group = typer.main.get_command(importlib.import_module(CLI_MAIN[tool]).app)
        sub = getattr(group, "commands", {}).get(args[0])  # typer >= 0.20 vendors click: duck-type
        if sub is None:
            raise RuntimeError(f"`{tool}` has no command {args[0]!r}")
        try:
            rc = group.main(list(args), prog_name=tool, standalone_mode=False)
        except typer.Exit as e:
            rc = e.exit_code
        except SystemExit as e:
            rc = e.code
        except Exception as e:
            if hasattr(e, "format_message"):  # a usage error of the command line
                raise RuntimeError(f"`{tool} {' '.join(args)}`: {e.format_message()}") from e
            raise
        if rc not in (None, 0):
            raise RuntimeError(f"`{tool} {' '.join(args)}` failed with exit code {rc} (its message is above)")


def model_config(size: dict[str, Any]) -> dict[str, Any]:
    w = size["width"]
    return {"embed_dim": w,
            "vision_cfg": {"image_size": size["image_size"], "layers": size["layers"], "width": w,
                           "head_width": 32, "patch_size": size["patch"]},
            "text_cfg": {"context_length": size.get("context", 32), "vocab_size": 49408, "width": w, "heads": max(1, w // 32),
                         "layers": size["layers"]}}


def stage_synth(ch: Chain, size: dict[str, Any], seed: int, bias: float) -> Path:
    from kgaug.synth.world import WorldConfig
    from kgaug.synth.writer import write_world

    world_dir = ch.out / "world"
    ch.say(f"synth: {size['train']} training images, {size['eval']} held-out scenes -> {world_dir}")
    cfg = WorldConfig.preset(size["preset"], image_size=size["image_size"], seed=seed, bias=bias)
    summary = write_world(cfg, world_dir, size["train"], size["eval"], size["zeroshot_per_class"],
                          progress=ch.say)
    ch.say(f"synth: done ({summary['eval'].get('items')})")
    return world_dir


def wordnet_available() -> bool:
    try:
        import nltk

        nltk.data.find("corpora/wordnet/lexnames")  # a lookup, not a load: loading takes seconds
        return True
    except (ImportError, LookupError, OSError):
        return False


def stage_build(ch: Chain, world_dir: Path, seed: int, wordnet: bool = False) -> Path:
    """`kgaug build --source vg` on the world. WordNet is off by default: the world's words are all in
    its own lexicon, a fresh clone has no WordNet data, and (2026-11-27) `kgaug build` with WordNet
    crashed in its worker pool on 3,000 images (nltk file handles shared across forked workers).
    Adversarial refinement is off (`--no-refine`): the world's captions come from one template grammar,
    so a text-only LM of them learns only the world's word frequencies; the ablation's evidence is for
    the world's full table (docs/RESULTS.md). Its graphs list everything each picture shows
    (`--complete-graphs`): an object or attribute a graph lacks is absent, so additions need no more evidence."""
    table = ch.out / "table"
    local = Path(__file__).resolve().parents[1] / ".cache" / "nltk_data"  # where `make test-assets` puts it
    if "NLTK_DATA" not in os.environ and local.is_dir():
        os.environ["NLTK_DATA"] = str(local)
    extra = [] if wordnet and wordnet_available() else ["--no-wordnet"]
    ch.cli("kgaug", "build", "--source", "vg", "--vg-dir", str(world_dir), "--out", str(table),
           "--seed", str(seed), "--no-refine", "--complete-graphs", "--overwrite", *extra)
    return table


def stage_shard(ch: Chain, table: Path, model_json: Path, size: dict[str, Any], seed: int, device: str) -> Path:
    shards = ch.out / "shards"
    ch.cli("clusterbuild", "shard", str(table), "--out", str(shards), "--model", str(model_json),
           "--cluster-size", str(max(8, size["batch_size"] // 4)), "--seed", str(seed), "--device", device,
           "--overwrite")
    return shards


class Progress(threading.Thread):
    """Prints a line from the trainer's metrics.jsonl every few seconds while it trains, labelled with the
    method (and seed): the chain's own display, in its log; the trainer's is off (`train run --quiet`)."""

    def __init__(self, ch: Chain, run_dir: Path, label: str, total: int, every_s: float = 10.0):
        super().__init__(daemon=True)
        self.ch, self.file, self.label, self.total, self.every_s = ch, run_dir / "metrics.jsonl", label, total, every_s
        self.stop = threading.Event()

    def run(self) -> None:
        last = None
        while not self.stop.wait(self.every_s):
            try:
                row = json.loads(self.file.read_text().strip().splitlines()[-1])
            except (OSError, IndexError, json.JSONDecodeError):
                continue
            if row.get("step") != last:
                last = row.get("step")
                self.ch.say(f"train {self.label}: step {last}/{self.total} loss {row.get('loss', float('nan')):.3f} "
                            f"({row.get('images_per_s', 0):.0f} images/s)")

    def __enter__(self) -> Progress:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.join()


def stage_train(ch: Chain, shards: Path, method: str, config: dict[str, Any], model_json: Path,
                size: dict[str, Any], seed: int, device: str) -> Path:
    """`train run --config` with the method's options (the registry's table) over the defaults."""
    run_dir = ch.out / "runs" / method
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg_file = run_dir / "method.json"
    result_tables.write_json(cfg_file, config)
    with Progress(ch, run_dir, method, size["steps"]):
        ch.cli("train", "run", str(shards), "--out", str(run_dir), "--config", str(cfg_file), "--model",
               str(model_json), "--steps", str(size["steps"]), "--batch-size", str(size["batch_size"]), "--seed",
               str(seed), "--device", device, "--save-every", str(max(1, size["steps"])), "--overwrite", "--quiet")
    return run_dir


def worker_init(n: int) -> None:
    """Start of a spawned training process: `n` torch threads, and (Linux) it dies with its parent, so a
    SIGTERM / kill of `make demo` or `make ablation` leaves no training process running on its own."""
    import torch

    torch.set_num_threads(n)
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass  # (a libc without prctl: the process is only orphaned, as before)


def train_methods(ch: Chain, shards: Path, configs: dict[str, dict[str, Any]], model_json: Path,
                  size: dict[str, Any], seed: int, device: str) -> dict[str, Path]:
    """`stage_train` for every method; on a CPU with two or more cores the methods train side by side in
    spawned processes, one thread each (these small models gain little from a second thread)."""
    cores = os.cpu_count() or 1
    if device != "cpu" or cores < 2 or len(configs) < 2:
        return {m: stage_train(ch, shards, m, c, model_json, size, seed, device) for m, c in configs.items()}
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    jobs = min(len(configs), cores)
    ch.say(f"training {', '.join(configs)} side by side ({jobs} processes, {max(1, cores // jobs)} thread(s) each)")
    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=worker_init,
                             initargs=(max(1, cores // jobs),)) as pool:
        futures = {m: pool.submit(stage_train, ch, shards, m, c, model_json, size, seed, device)
                   for m, c in configs.items()}
        return {m: f.result() for m, f in futures.items()}


def stage_eval(ch: Chain, run_dir: Path, world_dir: Path, device: str) -> dict[str, float]:
    """`train eval` on the held-out split (SugarCrepe subsets, zero-shot shape, zero-shot colour)."""
    ev = world_dir / "eval"
    out, out_c = run_dir / "eval.json", run_dir / "eval_colour.json"
    ch.cli("train", "eval", "--checkpoint", str(run_dir), "--out", str(out), "--sugarcrepe", str(ev / "sugarcrepe"),
           "--images", str(ev / "images"), "--zeroshot", str(ev / "zeroshot_shape"), "--device", device)
    ch.cli("train", "eval", "--checkpoint", str(run_dir), "--out", str(out_c),
           "--zeroshot", str(ev / "zeroshot_colour"), "--device", device)
    full = json.loads(out.read_text())
    res = result_tables.results_from_eval(full.get("sugarcrepe", full))
    res["zeroshot_shape"] = float(full["zeroshot"]["top1"])
    res["zeroshot_colour"] = float(json.loads(out_c.read_text())["zeroshot"]["top1"])
    ch.say("eval: " + " ".join(f"{k}={v:.3f}" for k, v in res.items()))
    return res


def stage_bias(ch: Chain, run_dir: Path, world_dir: Path, device: str) -> dict[str, float] | None:
    export = run_dir / "export"
    if not export.is_dir():
        ch.say(f"bias: no exported model in {export}; skipped")
        return None
    import open_clip

    from kgaug.synth import bias

    model, _, pre = open_clip.create_model_and_transforms(f"local-dir:{export}", device=device)
    tok = open_clip.get_tokenizer(f"local-dir:{export}")
    res = bias.measure(model, pre, tok, world_dir / "eval" / "bias", device)
    ch.say(f"bias: gap {res['gap']:+.4f} (se {res['se']:.4f}) over {res['pairs']} paired scenes, concept "
           f"{res['concept']!r}")
    return res


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    f = run_dir / "metrics.jsonl"
    if not f.is_file():
        return []
    rows = []
    for line in f.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in row.items():
        if isinstance(v, dict):
            out.update(flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def sample_rows(table: Path, n: int = 8) -> list[dict[str, Any]]:
    try:
        from kgaug.table import read_rows

        rows = []
        for r in read_rows(table, columns=["image", "captions", "pseudo_captions", "hard_negatives"]):
            if r.get("image"):
                rows.append(r)
            if len(rows) >= n:
                break
        return rows
    except (FileNotFoundError, ImportError, ValueError):
        return []


def write_report(ch: Chain, results: dict[str, dict[str, float]], stages: dict[str, str], table: Path | None,
                 runs: dict[str, Path], bias: dict[str, Any], size: dict[str, Any]) -> None:
    rep = page.Report("kgclip demo: the embedded compositional world", ch.out)
    rep.para(f"World preset {size['preset']!r}, {size['train']} training images at {size['image_size']} px, "
             f"{size['eval']} held-out scenes (object pairs never seen in training). Model: "
             f"{size['layers']}-layer ViT/text width {size['width']}, {size['steps']} steps of batch "
             f"{size['batch_size']}, random init, for both methods.")
    methods = registry()["methods"]
    rep.para(" ".join(f"**{m}**: {methods[m]['doc']}." for m in DEMO_METHODS if m in methods)
             + " The default is `fair-clip` (InfoNCE + the content-stratified fair term) + AHNM with the "
               "fact-aware false-negative guard + batches of scene-graph clusters (`train/configs/full-method.toml`).")
    rep.heading("Stages")
    rep.table([["stage", "status"], *([k, v] for k, v in stages.items())])
    if results:
        rep.heading("Held-out compositional and zero-shot accuracy (%)")
        rep.table(result_tables.results_table(results))
        rep.para("Chance is 50 % for every SugarCrepe-format subset; zero-shot chance is 1/classes.")
    ablation = Path(__file__).resolve().parents[1] / "docs" / "results.json"
    if results and ablation.is_file():
        try:
            ab = json.loads(ablation.read_text())
            same = all(ab.get("budget", {}).get(k) == v for k, v in size.items())
            rows = {m: {k: v for k, v in ab["methods"][m].items() if isinstance(v, dict) and "mean" in v}
                    for m in DEMO_METHODS if m in ab.get("methods", {})}
        except (ValueError, KeyError, TypeError):
            same, rows = False, {}
        if same and rows:
            rep.heading(f"The same comparison over {len(ab['seeds'])} seeds (docs/RESULTS.md, `make ablation`)")
            rep.para("This demo trains one seed; relations are learnt or not from one seed to the next, so the "
                     f"ablation's mean ± std over seeds {ab['seeds']} at this exact budget is the evidence:")
            rep.table(result_tables.results_table(rows))
    if bias:
        rep.heading("Bias (planted group/colour correlation)")
        rep.table([["method", "gap", "se", "share a closer"]] +
                  [[m, f"{b['gap']:+.4f}", f"{b['se']:.4f}", f"{b['share_a_closer']:.2f}"] for m, b in bias.items()])
    if table is not None:
        samples = sample_rows(table)
        if samples:
            rep.heading("Sample images with pseudo-captions and hard negatives (edits colour-coded)")
            rep.samples(samples)
    metrics = {m: [flatten(r) for r in read_metrics(d)] for m, d in runs.items()}
    if any(metrics.values()):
        fig = ch.out / "figures"
        rep.heading("Training curves")
        keys = ["loss", "loss_parts.contrastive", "loss_parts.fair", "logit_scale", "logit_bias", "images_per_s"]
        rep.image(result_tables.plot_curves(metrics, keys, fig / "loss.png", "training (both methods)"), "training curves")
        rep.heading("AHNM statistics over time (default method)")
        full = {"default": metrics.get("default", [])}
        akeys = [f"ahnm.{k}" for k in ("beta", "mean_margin", "mean_margin_kg", "mean_margin_inbatch", "mean_weight",
                                        "share_faded", "share_capped", "share_masked", "share_turned_positive")]
        rep.image(result_tables.plot_curves(full, akeys, fig / "ahnm.png", "AHNM schedule and shares"), "AHNM statistics")
        tkeys = sorted({k for r in full["default"] for k in r if k.startswith("ahnm.per_type.") and k.endswith(".margin")})
        rep.image(result_tables.plot_curves(full, tkeys, fig / "ahnm_types.png", "AHNM: mean margin per negative type"),
                  "AHNM margin per negative type")
    rep.heading("Log")
    rep.para(" / ".join(ch.log[-12:]))
    md, ht = rep.write("report")
    ch.say(f"report: {md} and {ht}")


def main(argv: list[str] | None = None) -> int:
    import logging

    # the stages log their progress at INFO (the trainer every step); show it
    logging.basicConfig(level=logging.INFO, format="%(levelname).1s %(name)s: %(message)s", force=True)
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo")
    p.add_argument("--quick", action="store_true", help="tiny sizes (tests): seconds, meaningless numbers")
    p.add_argument("--steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bias", type=float, default=float(registry()["budget"].get("bias", 0.8)),
                   help="planted group/colour correlation (0 = none) [the registry's]")
    p.add_argument("--device", default="cuda" if _cuda() else "cpu")
    p.add_argument("--wordnet", action="store_true", help="let kgaug build use WordNet when installed")
    a = p.parse_args(argv)
    size = dict(QUICK if a.quick else DEMO)
    if a.steps:
        size["steps"] = a.steps
    ch = Chain(Path(a.out))
    ch.out.mkdir(parents=True, exist_ok=True)
    model_json = ch.out / "kgclip-demo.json"
    model_json.write_text(json.dumps(model_config(size), indent=2) + "\n")
    stages: dict[str, str] = {}
    results: dict[str, dict[str, float]] = {}
    bias: dict[str, Any] = {}
    world_dir = stage_synth(ch, size, a.seed, a.bias)
    stages["kgaug synth"] = "done"
    table = stage_build(ch, world_dir, a.seed, a.wordnet)
    stages["kgaug build"] = "done"
    shards = stage_shard(ch, table, model_json, size, a.seed, a.device)
    stages["clusterbuild shard"] = "done"
    methods = registry()["methods"]
    runs = train_methods(ch, shards, {m: methods[m]["config"] for m in DEMO_METHODS}, model_json, size,
                         a.seed, a.device)
    for method in DEMO_METHODS:
        stages[f"train run ({method})"] = "done"
        results[method] = stage_eval(ch, runs[method], world_dir, a.device)
        stages[f"train eval ({method})"] = "done"
        b = stage_bias(ch, runs[method], world_dir, a.device)
        if b:
            bias[method] = b
    if results:
        result_tables.write_json(ch.out / "results.json", results)
    write_report(ch, results, stages, table, runs, bias, size)
    ch.say(f"done in {time.perf_counter() - ch.started:.0f}s")
    return 0


def _cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:  # pragma: no cover
        return False


if __name__ == "__main__":
    raise SystemExit(main())
