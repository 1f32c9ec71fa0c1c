"""The demo/ablation drivers and the report: rendering (fast) and the small chain end to end (slow)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kgclip import page
from train import ablation, demo
from train import results as result_tables


def test_results_from_train_eval_json():
    ev = {"subsets": {"swap_att": {"accuracy": 0.75, "n": 10}, "replace_rel": {"accuracy": 0.5, "n": 4}},
          "mean_accuracy": 0.62}
    assert result_tables.results_from_eval(ev) == {"swap_att": 0.75, "replace_rel": 0.5}
    assert result_tables.results_from_eval({"swap_att": 81.0}) == {"swap_att": 0.81}  # percentages are scaled


def test_mean_std_and_table():
    ms = result_tables.mean_std([0.5, 0.7, 0.6])
    assert ms["mean"] == pytest.approx(0.6) and ms["std"] == pytest.approx(0.1) and ms["seeds"] == [0.5, 0.7, 0.6]
    rows = result_tables.results_table({"clip": {"swap_att": ms}, "full": {"swap_att": 0.9, "replace_rel": 0.55}})
    assert rows[0] == ["method", "swap_att", "replace_rel"]
    assert rows[1] == ["clip", "60.0 ± 10.0", "–"] and rows[2] == ["full", "90.0", "55.0"]


def test_report_writes_markdown_and_html_with_the_same_content(tmp_path):
    img = tmp_path / "s.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(img)
    rep = page.Report("t", tmp_path)
    rep.heading("Accuracy")
    rep.table(result_tables.results_table({"full": {"swap_att": 0.9}, "clip": {"swap_att": 0.6}}))
    neg = {"type": "swap_att", "text": "a blue circle left of a red square", "to": "blue"}
    rep.samples([{"image": str(img), "captions": ["a red circle left of a blue square"],
                  "pseudo_captions": [{"text": "the circle is red"}], "hard_negatives": [neg]}])
    fig = result_tables.plot_curves({"full": [{"step": 1, "loss": 2.0}, {"step": 2, "loss": 1.0}]}, ["loss"],
                        tmp_path / "f" / "loss.png", "loss")
    rep.image(fig, "loss")
    md, ht = rep.write()
    m, h = md.read_text(), ht.read_text()
    for s in ("Accuracy", "90.0", "60.0", "the circle is red"):
        assert s in m and s in h
    assert "**blue**" in m and f'color:{page.EDIT_COLOURS["swap_att"]}' in h
    # the figure inline as it is, the sample photo as a small JPEG thumbnail
    assert "f/loss.png" in m and h.count("data:image/png;base64") == 1 and h.count("data:image/jpeg;base64") == 1


def test_registry_methods_are_distinct_and_cover_the_issue():
    reg = demo.registry()
    names = set(reg["methods"])
    assert {"clip", "siglip", "static", "default"} <= names
    assert {"default-no-ahnm", "default-no-cluster", "default-no-fair"} <= names  # one per part of the default
    assert reg["methods"]["default"]["config"] == {}  # the trainer's defaults themselves
    configs = [json.dumps(m["config"], sort_keys=True) for m in reg["methods"].values()]
    assert len(set(configs)) == len(configs)
    assert all(m["doc"] for m in reg["methods"].values())
    assert demo.DEMO == demo.size_of(reg["budget"]) and int(reg["budget"]["seeds"]) >= 5


def test_registry_rejects_unknown_options(tmp_path):
    bad = tmp_path / "r.toml"
    bad.write_text('[budget]\nsteps = 1\n[methods.clip]\nloss = "clip"\n[methods.default]\n'
                   '[methods.x]\nlearning_rate = 3\n')
    with pytest.raises(ValueError, match="learning_rate"):
        demo.registry(bad)


def test_demo_model_config_matches_world():
    cfg = demo.model_config(demo.DEMO)
    assert cfg["vision_cfg"]["image_size"] == demo.DEMO["image_size"]
    assert cfg["vision_cfg"]["image_size"] % cfg["vision_cfg"]["patch_size"] == 0


@pytest.mark.slow
def test_demo_chain_quick(tmp_path):
    assert demo.main(["--quick", "--out", str(tmp_path / "demo"), "--device", "cpu"]) == 0
    out = tmp_path / "demo"
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    res = json.loads((out / "results.json").read_text())
    assert set(res) == {"default", "clip"}
    for method in res.values():
        assert set(result_tables.RESULT_KEYS) <= set(method)
        assert all(0.0 <= v <= 1.0 for v in method.values())


@pytest.mark.slow
def test_ablation_quick(tmp_path):
    docs = tmp_path / "docs"
    rc = ablation.main(["--quick", "--work", str(tmp_path / "work"), "--docs", str(docs), "--methods",
                        "clip,default", "--seeds", "2", "--device", "cpu", "--points", "2"])
    assert rc == 0 and (docs / "results.json").is_file()
    res = json.loads((docs / "results.json").read_text())
    assert res["seeds"] == [0, 1] and res["default"] == "default" and set(res["methods"]) == {"clip", "default"}
    for m in res["methods"].values():
        assert {"config", "doc", "swap_att", "replace_rel", "zeroshot_colour", "bias_gap", "binding_mean"} <= set(m)
        assert all(len(v["per_seed"]) == 2 and set(v) == {"mean", "std", "per_seed"}
                   for k, v in m.items() if isinstance(v, dict) and "mean" in v)
    text = (docs / "RESULTS.md").read_text()
    assert "| clip |" in text and "| default |" in text and "≥ CLIP + 10 points" in text
    # a second invocation reuses every finished run
    rc = ablation.main(["--quick", "--work", str(tmp_path / "work"), "--docs", str(docs), "--methods",
                        "clip,default", "--seeds", "2", "--device", "cpu", "--points", "2"])
    assert rc == 0 and "4 runs (4 reused" in (docs / "RESULTS.md").read_text()
    # --finished-only writes the table from what has finished and trains nothing (seed 2 is missing)
    rc = ablation.main(["--quick", "--work", str(tmp_path / "work"), "--docs", str(docs), "--methods",
                        "clip,default", "--seeds", "3", "--device", "cpu", "--points", "2", "--finished-only"])
    text = (docs / "RESULTS.md").read_text()
    assert rc == 0 and "4 runs (4 reused" in text and "| clip | 2 |" in text
    assert not (tmp_path / "work" / "runs" / "clip-s2").exists()
    assert json.loads((docs / "results.json").read_text())["methods"]["clip"]["seeds"] == [0, 1]
    # a fresh checkout (no run folders) gets the recorded runs back with --reuse-recorded
    recs = [json.loads(ln) for ln in (docs / "ablation_runs.jsonl").read_text().splitlines()]
    assert sorted((r["method"], r["seed"]) for r in recs) == [("clip", 0), ("clip", 1), ("default", 0), ("default", 1)]
    table = json.loads((docs / "results.json").read_text())["budget"]["table"]
    assert len(table) == 16 and all(r["table"] == table for r in recs)  # what each run trained on
    shutil.rmtree(tmp_path / "work" / "runs")
    rc = ablation.main(["--quick", "--work", str(tmp_path / "work"), "--docs", str(docs), "--methods",
                        "clip,default", "--seeds", "2", "--device", "cpu", "--points", "2", "--reuse-recorded",
                        "--finished-only"])
    assert rc == 0 and "4 runs (4 reused" in (docs / "RESULTS.md").read_text()


def _run(method, seed, **final):
    base = {k: 0.8 for k in result_tables.RESULT_KEYS}
    return {"method": method, "seed": seed, "final": {**base, "bias_gap": 0.02, **final}, "curve": [],
            "train_seconds": 1.0}


def test_aggregate_keeps_per_seed_values_and_the_goal_check_reads_them():
    methods = {m: {"doc": m, "config": {}} for m in ("clip", "static", "default")}
    runs = [_run("clip", s, replace_rel=0.6 + 0.1 * s) for s in range(3)]
    runs += [_run("static", s, swap_att=0.82) for s in range(3)]
    runs += [_run("default", s, replace_rel=0.9, swap_att=0.95, swap_obj=0.9, replace_obj=0.9,
                  zeroshot_colour=0.79, bias_gap=0.005) for s in range(3)]
    table = ablation.aggregate(runs, methods)
    assert list(table) == ["clip", "static", "default"] and table["clip"]["seeds"] == [0, 1, 2]
    assert table["clip"]["replace_rel"]["per_seed"] == pytest.approx([0.6, 0.7, 0.8])
    assert table["clip"]["replace_rel"]["std"] == pytest.approx(0.1)
    assert table["default"]["binding_mean"]["mean"] == pytest.approx((0.95 + 0.9 + 0.9) / 3)
    check = "\n".join(ablation.goal_check(table))
    assert "| binding mean (swap_att, swap_obj, replace_obj) ≥ CLIP + 5 points | +11.7 | met |" in check
    assert "| replace_rel ≥ CLIP + 10 points | +20.0 | met |" in check
    assert "zero-shot colour no more than 2 points below CLIP | -1.0 | met |" in check
    assert "≥ static (NegCLIP's recipe) + 3 points | +11.0 | met |" in check
    assert "×0.25 | met |" in check  # bias gap 0.005 vs 0.02


def test_a_recorded_run_is_reused_only_for_the_table_it_trained_on(tmp_path):
    # A run trained on the negatives an older kgaug made for the world is not a run of today's table:
    # --reuse-recorded / a second invocation must retrain it, not put it in the table.
    ch = demo.Chain(tmp_path)
    size = {"steps": 10}
    done = tmp_path / "runs" / "clip-s0" / "ablation_eval.json"
    done.parent.mkdir(parents=True)
    done.write_text(json.dumps({"method": "clip", "seed": 0, "resolved": ablation.resolved_options({}),
                                "size": size, "table": "aaaa", "final": {}, "curve": []}))
    args = (ch, tmp_path, tmp_path, tmp_path / "m.json", "clip", {}, 0, size, "cpu", 2)
    assert ablation.one_run(*args, "aaaa", finished_only=True)["reused"]
    assert ablation.one_run(*args, "bbbb", finished_only=True) is None


def test_table_fingerprint_follows_the_negatives(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    def table(folder, negative, order=(0, 1)):
        rows = [{"key": f"k{i}", "captions": [f"a red cube {i}"], "pseudo_captions": [],
                 "hard_negatives": [{"type": "replace_rel", "text": negative}]} for i in order]
        (folder / "table").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), folder / "table" / "part-00000.parquet")
        return folder

    a = ablation.table_fingerprint(table(tmp_path / "a", "a cube right of a ball"))
    assert a == ablation.table_fingerprint(table(tmp_path / "b", "a cube right of a ball", order=(1, 0)))
    assert a != ablation.table_fingerprint(table(tmp_path / "c", "a cube in a ball"))
    assert len(a) == 16


def _running(pid: int) -> bool:
    """The process exists and is not a zombie (an orphan may wait unreaped in a container)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_training_worker_dies_with_the_driver(tmp_path):
    # `make ablation` / `make demo` train in spawned worker processes; a SIGTERM to the driver must not
    # leave them training on their own (they used to run to the end of their run, orphaned).
    script = tmp_path / "driver.py"
    script.write_text(
        "import multiprocessing as mp, os, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from train.demo import worker_init\n"
        "if __name__ == '__main__':\n"
        "    with ProcessPoolExecutor(1, mp_context=mp.get_context('spawn'), initializer=worker_init,\n"
        "                             initargs=(1,)) as pool:\n"
        "        print(pool.submit(os.getpid).result(), flush=True)\n"
        "        pool.submit(time.sleep, 120)\n"
        "        time.sleep(120)\n")
    root = Path(__file__).resolve().parents[2]
    env = dict(os.environ, PYTHONPATH=str(root))
    driver = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        worker = int(driver.stdout.readline())
        assert _running(worker)
        time.sleep(0.5)  # the worker is in its sleep
        driver.terminate()
        driver.wait(timeout=30)
        deadline = time.monotonic() + 20
        while _running(worker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _running(worker), "the worker outlived its driver"
    finally:
        driver.kill()
