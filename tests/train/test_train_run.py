"""`train run` end to end on shards of real COCO photos: every loss × negatives × batching."""

from __future__ import annotations

import json
import math

import pytest
import torch

from train import loop, metrics

# the whole grid; half of it (the other batching for each loss × negatives) runs in the slow suite
COMBOS = [pytest.param(loss, neg, bat, marks=[pytest.mark.slow] if (i + j + k) % 2 else [])
          for i, loss in enumerate(("clip", "siglip", "fair-siglip"))
          for j, neg in enumerate(("none", "static", "ahnm"))
          for k, bat in enumerate(("random", "cluster"))]


def _cfg(shards, out, **kw):
    base = {"model": "kgclip-tiny-64", "shards": [str(shards)], "out": str(out), "steps": 6, "batch_size": 16, "lr": 2e-3, "warmup": 1,
            "save_every": 100, "plots": False, "export": False}
    base.update(kw)
    return base


@pytest.mark.parametrize("loss,negatives,batching", COMBOS)
def test_combination_trains_and_loss_decreases(coco_shards, tmp_path, loss, negatives, batching):
    # 16 samples, batch 16: every step sees the same images (a repeated batch)
    s = loop.run(_cfg(coco_shards, tmp_path, loss=loss, negatives=negatives, batching=batching))
    recs = metrics.read(tmp_path)
    assert [r["step"] for r in recs] == list(range(1, 7))
    assert all(math.isfinite(r["loss"]) for r in recs)
    assert recs[-1]["loss"] < recs[0]["loss"], [r["loss"] for r in recs]
    assert s["steps"] == 6 and (tmp_path / "latest.pt").exists()
    n_img = recs[0]["n_images"]
    assert n_img == 16
    if negatives == "none":
        assert recs[0]["ahnm"]["per_type"] == {}  # no KG negative columns
    else:
        assert set(recs[0]["ahnm"]["per_type"]) <= {"add_obj", "add_att"} and recs[0]["ahnm"]["per_type"]
    if negatives == "ahnm":
        assert "beta" in recs[-1]["ahnm"] and recs[-1]["ahnm"]["beta"] > recs[0]["ahnm"]["beta"]
    if loss == "fair-siglip":
        assert "fair" in recs[0]["loss_parts"]


def test_full_method_outputs(coco_shards, tmp_path):
    """Defaults (fair-clip, ahnm, cluster): metrics fields, plots, config, export, summary."""
    s = loop.run({"model": "kgclip-tiny-64", "shards": [str(coco_shards)], "out": str(tmp_path), "steps": 3, "batch_size": 8})
    rec = metrics.read(tmp_path)[0]
    for k in ("step", "loss", "loss_parts", "lr", "images_per_s", "logit_scale", "logit_bias", "ahnm"):
        assert k in rec
    for k in ("beta", "mean_margin", "share_masked", "share_capped", "share_turned_positive", "per_type",
              "margin_hist"):
        assert k in rec["ahnm"]
    assert {"loss.png", "margin_hist.png", "ahnm_shares.png"} <= {p.name for p in (tmp_path / "plots").iterdir()}
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["loss"] == "fair-clip" and conf["negatives"] == "ahnm" and conf["batching"] == "cluster"
    assert (tmp_path / "config.yaml").exists() and (tmp_path / "summary.json").exists()
    assert s["export"] and (tmp_path / "export" / "open_clip_config.json").exists()
    ck = torch.load(tmp_path / "latest.pt", weights_only=True)
    assert ck["step"] == 3 and "logit_bias" not in ck["state_dict"]  # InfoNCE: a temperature, no bias


def test_resume_matches_uninterrupted_run(coco_shards, tmp_path):
    kw = dict(batch_size=4, steps=8, save_every=3, lr=1e-3, clusters_per_batch=2)
    full = tmp_path / "full"
    loop.run(_cfg(coco_shards, full, **kw))
    part = tmp_path / "part"
    # interrupted run: same schedule (steps=8), stopped after the checkpoint at step 6 (16/4 = 4 batches
    # per epoch, so the resume point lies inside the second epoch)
    cfg = _cfg(coco_shards, part, **kw)
    cfg["save_every"] = 6
    with pytest.raises(_Stop):
        _run_until(cfg, stop_after=6)
    cfg["resume"] = True
    s = loop.run(cfg)
    assert s["resumed_from"] == 6
    a = [r["loss"] for r in metrics.read(full)]
    b = [r["loss"] for r in metrics.read(part)]
    assert len(a) == len(b) == 8
    assert a == pytest.approx(b, rel=1e-5, abs=1e-6)


class _Stop(Exception):
    pass


def _run_until(cfg, stop_after):
    """Run `loop.run` but abort once `stop_after` steps were checkpointed (simulates a crash)."""
    from train import checkpoint as ck

    real = ck.save

    def save(path, payload):
        real(path, payload)
        if payload["step"] >= stop_after:
            raise _Stop

    ck.save = save
    try:
        loop.run(cfg)
    finally:
        ck.save = real
