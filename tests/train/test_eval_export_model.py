"""Export (open_clip local-dir:), `train eval` on SugarCrepe/ARO/zero-shot/retrieval, LoRA and frozen blocks."""

from __future__ import annotations

import json
import os
import re
import shutil

import open_clip
import pytest
import torch
from typer.testing import CliRunner

from train import loop
from train.cli import app


@pytest.fixture(scope="module")
def trained(coco_shards, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    loop.run({"model": "kgclip-tiny-64", "shards": [str(coco_shards)], "out": str(out), "steps": 3, "batch_size": 8, "plots": False})
    return out


def test_export_loads_in_open_clip_with_identical_weights(trained, tmp_path):
    ck = torch.load(trained / "latest.pt", weights_only=True)
    for folder in (trained / "export", tmp_path / "exp"):
        if folder != trained / "export":
            r = CliRunner().invoke(app, ["export", "--checkpoint", str(trained / "latest.pt"), "--out", str(folder)])
            assert r.exit_code == 0, r.output
        model, _, pre = open_clip.create_model_and_transforms(f"local-dir:{folder}")
        sd = model.state_dict()
        assert set(sd) == set(ck["state_dict"])
        assert all(torch.equal(sd[k], ck["state_dict"][k]) for k in sd)
        tok = open_clip.get_tokenizer(f"local-dir:{folder}")
        assert model.encode_text(tok(["a dog"])).shape == (1, 64)


def test_checkpoint_loads_as_open_clip_pretrained_and_open_clip_checkpoints_evaluate(trained, tmp_path):
    from kgclip import models
    from train import eval as evaluation

    models.register_configs()
    latest = trained / "latest.pt"
    # SigLIP-initialised models carry logit_bias, which open_clip creates only when asked to
    m, _, _ = open_clip.create_model_and_transforms("kgclip-tiny-64", pretrained=str(latest), init_logit_bias=-10.0)
    ck = torch.load(latest, weights_only=True)
    assert torch.equal(m.state_dict()["text_projection"], ck["state_dict"]["text_projection"])
    # a checkpoint in open_clip_train's format (no model_cfg): evaluated with --model
    torch.save({"epoch": 1, "name": "x", "state_dict": {k: v for k, v in ck["state_dict"].items() if k != "logit_bias"}},
               tmp_path / "epoch_1.pt")
    sc = evaluation.load_scorer(tmp_path / "epoch_1.pt", model="kgclip-tiny-64")
    assert torch.equal(sc.model.state_dict()["text_projection"], ck["state_dict"]["text_projection"])


def _sugarcrepe_file(coco_mini_dir, samples, folder, n=6, missing=False):
    folder.mkdir(parents=True, exist_ok=True)
    data = {str(i): {"filename": s.meta["image"], "caption": s.txt, "negative_caption": s.meta["hard_negatives"][0]["text"]}
            for i, s in enumerate(samples[:n])}
    if missing:
        data["x"] = {"filename": "nope.jpg", "caption": "a", "negative_caption": "b"}
    (folder / "add_obj.json").write_text(json.dumps(data))
    swap = {str(i): {"filename": s.meta["image"], "caption": s.txt,
                     "negative_caption": " ".join(reversed(s.txt.split()))} for i, s in enumerate(samples[:n])}
    (folder / "swap_obj.json").write_text(json.dumps(swap))


def test_train_eval_sugarcrepe_aro_zeroshot_retrieval(trained, coco_mini_dir, coco_shards, tmp_path):
    from clusterbuild.contract import iter_samples
    from train.data import resolve_shards

    samples = list(iter_samples(resolve_shards([str(coco_shards)])))
    _sugarcrepe_file(coco_mini_dir, samples, tmp_path / "sc", missing=True)
    aro = [{"image_path": s.meta["image"], "bbox_x": 0, "bbox_y": 0, "bbox_w": 60, "bbox_h": 40,
            "true_caption": s.txt, "false_caption": s.meta["hard_negatives"][0]["text"],
            "relation_name": ["on", "near"][i % 2]} for i, s in enumerate(samples[:6])]
    (tmp_path / "vg_relation.json").write_text(json.dumps(aro))
    zs = tmp_path / "zs"
    for i, s in enumerate(samples[:6]):
        (zs / f"class{i % 3}").mkdir(parents=True, exist_ok=True)
        shutil.copy(coco_mini_dir / "images" / s.meta["image"], zs / f"class{i % 3}" / s.meta["image"])
    (zs / "classnames.txt").write_text("dog\ncat\ntrain\n")
    (zs / "templates.txt").write_text("a photo of a {c}.\na picture of the {c}.\n")
    out = tmp_path / "eval.json"
    r = CliRunner().invoke(app, ["eval", "--checkpoint", str(trained), "--out", str(out), "--sugarcrepe",
                                 str(tmp_path / "sc"), "--images", str(coco_mini_dir / "images"), "--aro",
                                 str(tmp_path / "vg_relation.json"), "--zeroshot", str(zs), "--retrieval",
                                 str(coco_shards)])
    assert r.exit_code == 0, r.output
    res = json.loads(out.read_text())
    sub = res["sugarcrepe"]["subsets"]
    assert set(sub) == {"add_obj", "swap_obj"} and sub["add_obj"]["n"] == 6
    assert sub["add_obj"]["skipped"] == {"missing image": 1}
    assert all(0 <= v["accuracy"] <= 1 for v in sub.values())
    assert res["aro"]["vg_relation"]["n_groups"] == 2 and 0 <= res["aro"]["vg_relation"]["macro_accuracy"] <= 1
    zsr = res["zeroshot"]
    assert zsr["n"] == 6 and zsr["classes"] == 3 and zsr["templates"] == 2 and zsr["top5"] == 1.0
    ret = res["retrieval"]
    assert ret["n_images"] == 16 and ret["n_texts"] == 80
    assert ret["i2t_R@1"] <= ret["i2t_R@5"] <= ret["i2t_R@10"] and ret["t2i_R@10"] > 0
    assert out.with_suffix(".png").exists()


def test_lora_and_frozen_blocks(coco_shards, tmp_path):
    base = {"model": "kgclip-tiny-64", "shards": [str(coco_shards)], "steps": 2, "batch_size": 8, "plots": False, "lr": 1e-2}
    s = loop.run({**base, "out": str(tmp_path / "lora"), "lora_rank": 4, "loss": "fair-siglip"})
    assert s["trainable_params"] < s["params"] / 5
    ck = torch.load(tmp_path / "lora" / "latest.pt", weights_only=True)
    assert any("lora_A" in k and ".attn." in k for k in ck["train_state_dict"])  # attention LoRA is on
    plain, _, _ = open_clip.create_model_and_transforms(f"local-dir:{tmp_path / 'lora' / 'export'}")
    plain.load_state_dict(ck["state_dict"], strict=True)  # merged weights are a plain open_clip model
    init = open_clip.create_model("kgclip-tiny-64")  # only to compare shapes
    assert set(init.state_dict()) | {"logit_bias"} == set(ck["state_dict"])
    # LoRA changed the merged attention weights, i.e. the adapter ran
    s1 = loop.run({**base, "out": str(tmp_path / "lora2"), "lora_rank": 4, "steps": 1, "lr": 0.0, "logit_lr": 0.0})
    ck0 = torch.load(tmp_path / "lora2" / "latest.pt", weights_only=True)
    k = "visual.transformer.resblocks.0.attn.in_proj_weight"
    assert s1["steps"] == 1 and not torch.allclose(ck0["state_dict"][k], ck["state_dict"][k])

    torch.manual_seed(0)
    frozen = loop.run({**base, "out": str(tmp_path / "frz"), "freeze_blocks": 1, "export": False})
    ckf = torch.load(tmp_path / "frz" / "latest.pt", weights_only=True)
    assert frozen["trainable_params"] < frozen["params"]
    # block 0 keeps its initial weights (same seed -> same init as the lr-0 LoRA run's base)
    k0, k1 = "transformer.resblocks.0.mlp.c_fc.weight", "transformer.resblocks.1.mlp.c_fc.weight"
    assert torch.equal(ckf["state_dict"][k0], ck0["state_dict"][k0])
    assert not torch.equal(ckf["state_dict"][k1], ck0["state_dict"][k1])


def test_train_eval_shows_a_bar_per_evaluation_and_quiet_hides_them(trained, coco_shards, tmp_path):
    import subprocess
    import sys

    code = "import sys; from train.cli import app; app(sys.argv[1:], prog_name='train')"
    base = [sys.executable, "-c", code, "eval", "--checkpoint", str(trained), "--retrieval", str(coco_shards)]
    env = dict(os.environ, OMP_NUM_THREADS="1", HF_HUB_OFFLINE="1", COLUMNS="150")
    r = subprocess.run([*base, "--out", str(tmp_path / "a.json")], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert re.search(r"eval retrieval .*96/\? .*embeddings/s", r.stderr), r.stderr[-2000:]  # 16 images + 80 texts
    q = subprocess.run([*base, "--out", str(tmp_path / "b.json"), "-q"], capture_output=True, text=True, env=env,
                       timeout=600)
    assert q.returncode == 0 and "eval retrieval" not in q.stderr, q.stderr[-2000:]
