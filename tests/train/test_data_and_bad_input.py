"""Loader (batching, what a batch carries) and every bad input the issue lists."""

from __future__ import annotations

import random

import pytest
import torch
from typer.testing import CliRunner

from clusterbuild import contract, shardio
from train import config as train_config
from train import data, loop, metrics
from train.ahnm import ROLE_KG, ROLE_POSITIVE, ROLE_PRIMARY


def _items(n, clusters):
    return [data.Item(f"k{i}", b"", f"t{i}", [], [], i % clusters if clusters else 0, [], set(), 1.0, {})
            for i in range(n)]


def test_cluster_batches_bounded_buffer_few_clusters_each():
    items = sorted(_items(64, 8), key=lambda it: it.cluster_id)  # shards keep clusters contiguous
    consumed = []

    def stream():
        for it in items:
            consumed.append(it)
            yield it

    emitted, max_held = [], 0
    for b in data.cluster_batches(stream(), 8, 2, 24, random.Random(0)):
        max_held = max(max_held, len(consumed) - len(emitted))
        emitted += b
        assert len({it.cluster_id for it in b}) <= 2 or len(emitted) > 40  # tail may mix
    assert sorted(it.key for it in emitted) == sorted(it.key for it in items)
    assert max_held <= 24
    # a cluster/random mix of 0: batches drawn uniformly from the buffer instead
    mixed = list(data.cluster_batches(iter(items), 8, 2, 24, random.Random(0), mix=lambda n: 0.0))
    assert max(len({it.cluster_id for it in b}) for b in mixed) > 2
    assert sorted(it.key for b in mixed for it in b) == sorted(it.key for it in items)
    got = list(data.random_batches(iter(_items(20, 0)), 8, 10, random.Random(0)))
    assert [len(b) for b in got] == [8, 8, 4] and len({it.key for b in got for it in b}) == 20


def test_stream_batch_carries_captions_negatives_flags_and_tags(coco_shards):
    import open_clip

    from kgclip import models

    lm = models.create("kgclip-tiny-64")
    col = data.Collator(lm.preprocess, open_clip.get_tokenizer(lm.name), 2, 2, True)
    stream = data.ShardStream(data.resolve_shards([str(coco_shards)]), col, 16, "random", 4, 64, 0, 0)
    batch = next(iter(stream))
    m = batch["meta"]
    assert batch["images"].shape == (16, 3, 64, 64) and batch["tokens"].shape[0] == len(m["owner"])
    assert m["role"].count(ROLE_PRIMARY) == 16 and m["role"].count(ROLE_POSITIVE) == 16
    assert m["role"].count(ROLE_KG) > 16  # 1-2 KG negatives per image
    assert any(m["near_dups"]) and any(s.get("gender") for s in m["sensitive"]) and len(set(m["weight"])) > 1
    cols, nd, groups, w, fx = data.layout([m])
    assert nd.sum() == 2 and "gender" in groups and w.shape == (16,)
    assert torch.equal(cols.primary, torch.arange(16))


def _write(folder, samples):
    shardio.write_shard_set(folder, samples, samples_per_shard=8)
    return folder


def test_shard_failing_the_contract_names_the_shard(coco_shards, tmp_path):
    good = list(contract.iter_samples(data.resolve_shards([str(coco_shards)])))[:4]
    bad = contract.Sample(good[0].key, good[0].image, "jpg", good[0].txt, {"schema": contract.SCHEMA, "key": good[0].key})
    _write(tmp_path / "s", [bad, *good[1:]])
    with pytest.raises(ValueError, match=r"000000\.tar fails the kgclip contract.*lacks required field"):
        loop.run({"model": "kgclip-tiny-64", "shards": [str(tmp_path / "s")], "out": str(tmp_path / "o"), "steps": 1, "batch_size": 4})


def test_empty_inputs_and_unknown_config_key(tmp_path):
    with pytest.raises(ValueError, match="no shards"):
        loop.run({"model": "kgclip-tiny-64", "shards": [], "out": str(tmp_path / "o"), "steps": 1})
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no shards"):
        loop.run({"model": "kgclip-tiny-64", "shards": [str(tmp_path / "empty")], "out": str(tmp_path / "o"), "steps": 1})
    (tmp_path / "c.yaml").write_text("steps: 2\nahnm:\n  beta_max: 3\n  betta: 1\n")
    with pytest.raises(ValueError, match=r"unknown option 'ahnm.betta'"):
        train_config.from_dict(train_config.load_file(tmp_path / "c.yaml"))
    (tmp_path / "c.toml").write_text("lr = 0.1\nlearning_rate = 2\n")
    with pytest.raises(ValueError, match=r"c.toml: unknown option 'learning_rate'"):
        train_config.from_dict(train_config.load_file(tmp_path / "c.toml"), source=str(tmp_path / "c.toml"))


def test_samples_without_negatives_train(coco_shards, tmp_path):
    samples = list(contract.iter_samples(data.resolve_shards([str(coco_shards)])))[:8]
    for s in samples:
        s.meta["hard_negatives"] = []
    _write(tmp_path / "s", samples)
    s = loop.run({"model": "kgclip-tiny-64", "shards": [str(tmp_path / "s")], "out": str(tmp_path / "o"), "steps": 2, "batch_size": 8,
                  "plots": False, "export": False})
    assert s["steps"] == 2 and metrics.read(tmp_path / "o")[0]["ahnm"]["per_type"] == {}


def test_resume_with_another_model_config_is_a_clear_error(coco_shards, tmp_path):
    base = {"model": "kgclip-tiny-64", "shards": [str(coco_shards)], "out": str(tmp_path), "steps": 1, "batch_size": 8, "plots": False,
            "export": False}
    loop.run(base)
    with pytest.raises(ValueError, match="trained with model 'kgclip-tiny-64'.*differs"):
        loop.run({**base, "model": "kgclip-small-64", "resume": True, "steps": 2})


def test_nan_loss_stops_and_keeps_last_good_checkpoint(coco_shards, tmp_path, monkeypatch):
    from train import losses

    real, calls = losses.compute_loss, []

    def flaky(*a, **k):
        total, parts = real(*a, **k)
        calls.append(1)
        return (total * float("nan") if len(calls) == 3 else total), parts

    monkeypatch.setattr(losses, "compute_loss", flaky)
    with pytest.raises(loop.NaNLossError, match="loss is nan at step 3.*latest.pt"):
        loop.run({"model": "kgclip-tiny-64", "shards": [str(coco_shards)], "out": str(tmp_path), "steps": 5, "batch_size": 8,
                  "save_every": 2})
    assert torch.load(tmp_path / "latest.pt", weights_only=True)["step"] == 2


def test_cli_run_with_config_file_and_flags(coco_shards, tmp_path):
    from train.cli import app

    (tmp_path / "c.toml").write_text('loss = "siglip"\nsteps = 5\n[ahnm]\nbeta_max = 2.0\n')
    r = CliRunner().invoke(app, ["run", str(coco_shards), "--model", "kgclip-tiny-64", "--out", str(tmp_path / "o"), "--config",
                                 str(tmp_path / "c.toml"), "--steps", "2", "--batch-size", "8",
                                 "--batching", "random"])
    assert r.exit_code == 0, r.output
    conf = train_config.load_file(tmp_path / "o" / "config.json")
    assert conf["loss"] == "siglip" and conf["steps"] == 2 and conf["ahnm"]["beta_max"] == 2.0
    assert conf["batching"] == "random"
    r = CliRunner().invoke(app, ["run", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2 and "does not exist" in r.output


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    from train import checkpoint as ck

    ck.save(tmp_path / "latest.pt", {"step": 1})

    def broken(obj, f):
        open(f, "wb").write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken)
    with pytest.raises(OSError):
        ck.save(tmp_path / "latest.pt", {"step": 2})
    assert ck.load(tmp_path)["step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["latest.pt"]


def test_shipped_example_config_lists_every_option_with_its_default():
    from pathlib import Path

    path = Path(train_config.__file__).with_name("configs") / "full-method.toml"
    data = train_config.load_file(path)
    assert set(data) | {"shards", "out", "pretrained"} == set(train_config.TrainConfig().to_dict())
    assert train_config.from_dict(data, source=str(path)) == train_config.TrainConfig()


def test_config_values_of_the_wrong_type_are_errors_naming_the_option(tmp_path):
    with pytest.raises(ValueError, match=r"cfg.toml: option 'steps' must be int, got 'two'"):
        train_config.from_dict({"steps": "two"}, source="cfg.toml")
    with pytest.raises(ValueError, match=r"option 'ahnm.beta_max' must be float"):
        train_config.from_dict({"ahnm": {"beta_max": "high"}})
    with pytest.raises(ValueError, match=r"option 'fair_strata' must be bool"):
        train_config.from_dict({"fair_strata": "yes"})
    cfg = train_config.from_dict({"lr": 1, "steps": 10.0, "siglip_init_bias": "auto", "pretrained": None})
    assert cfg.lr == 1.0 and isinstance(cfg.lr, float) and cfg.steps == 10 and isinstance(cfg.steps, int)
    assert train_config.parse_overrides(["ahnm.beta_max=2", "loss=clip", "fair_strata=false"]) == {
        "ahnm": {"beta_max": 2}, "loss": "clip", "fair_strata": False}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        train_config.parse_overrides(["beta_max"])
    r = CliRunner().invoke(__import__("train.cli", fromlist=["app"]).app,
                           ["run", str(tmp_path), "--out", str(tmp_path / "o"), "--set", "steps=two"])
    assert r.exit_code == 2 and "option 'steps' must be int" in r.output


def test_run_help_shows_every_default_in_brackets():
    # rich markup used to swallow "[kgclip-tiny-64]" and "[none: random init]" as style tags
    from train.cli import app

    r = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200", "TERMINAL_WIDTH": "200"})
    assert r.exit_code == 0
    text = " ".join(r.output.split())
    for default in ("[ViT-B-32, as clusterbuild]", "[none: random init]", "[fp32]", "[cpu]", "[32]"):
        assert default in text, default
    assert "required, here or as `out` in --config" in text


def test_an_earlier_run_is_continued_or_replaced_only_when_asked(coco_shards, tmp_path):
    # the rule of the three tools: an OUT holding an earlier run is an error unless --resume (continue it)
    # or --overwrite (start over: its checkpoint, metrics, plots and export removed first)
    import warnings

    from train.cli import app

    def run_args(steps: int) -> list[str]:
        return ["run", str(coco_shards), "--model", "kgclip-tiny-64", "--out", str(tmp_path / "o"), "--steps",
                str(steps), "--batch-size", "4", "-q"]

    args = run_args(1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # a one-step run plots without matplotlib's warning
        assert CliRunner().invoke(app, args).exit_code == 0
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "already holds a training run" in r.output and "--overwrite" in r.output, r.output
    (tmp_path / "o" / "plots" / "stale.png").write_bytes(b"x")
    r = CliRunner().invoke(app, [*args, "--overwrite"])
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "o" / "plots" / "stale.png").exists()
    assert [x["step"] for x in metrics.read(tmp_path / "o")] == [1]  # not the first run's step 1 twice
    r = CliRunner().invoke(app, [*run_args(2), "--resume"])
    assert r.exit_code == 0 and [x["step"] for x in metrics.read(tmp_path / "o")] == [1, 2], r.output
