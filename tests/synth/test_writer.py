"""`kgaug synth` on disk: Visual Genome's format, SugarCrepe/zero-shot/bias eval files, same bytes twice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from kgaug.cli import app
from kgaug.synth import bias, text


def _synth(out: Path, *extra: str) -> None:
    r = CliRunner().invoke(app, ["synth", "--out", str(out), "--train", "60", "--eval", "40",
                                 "--zeroshot-per-class", "4", *extra])
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("world")
    _synth(out, "--seed", "5", "--bias", "0.5")
    return out


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    _synth(tmp_path / "a", "--seed", "2")
    _synth(tmp_path / "b", "--seed", "2")
    _synth(tmp_path / "c", "--seed", "3")
    da, db, dc = _digest(tmp_path / "a"), _digest(tmp_path / "b"), _digest(tmp_path / "c")
    assert da == db and len(da) > 100
    assert da["scene_graphs.json"] != dc["scene_graphs.json"]


def test_vg_json_has_the_real_structure(world_dir, vg_sample_dir):
    real_sg = json.loads((vg_sample_dir / "scene_graphs.json").read_text())
    ours = json.loads((world_dir / "scene_graphs.json").read_text())
    assert isinstance(ours, list) and len(ours) == 60
    assert set(ours[0]) == set(real_sg[0])
    real_obj_keys = set().union(*(o.keys() for g in real_sg for o in g["objects"]))
    real_rel_keys = set().union(*(r.keys() for g in real_sg for r in g["relationships"]))
    for g in ours:
        for o in g["objects"]:
            assert set(o) <= real_obj_keys and {"object_id", "x", "y", "w", "h", "names", "synsets"} <= set(o)
        ids = {o["object_id"] for o in g["objects"]}
        for r in g["relationships"]:
            assert set(r) == real_rel_keys
            assert r["subject_id"] in ids and r["object_id"] in ids
    real_img = json.loads((vg_sample_dir / "image_data.json").read_text())
    img = json.loads((world_dir / "image_data.json").read_text())
    assert set(img[0]) == set(real_img[0])
    real_reg = json.loads((vg_sample_dir / "region_descriptions.json").read_text())
    reg = json.loads((world_dir / "region_descriptions.json").read_text())
    assert set(reg[0]) == set(real_reg[0]) and set(reg[0]["regions"][0]) == set(real_reg[0]["regions"][0])
    for name in ("object_synsets.json", "attribute_synsets.json", "relationship_synsets.json"):
        real = json.loads((vg_sample_dir / name).read_text())
        m = json.loads((world_dir / name).read_text())
        assert all(isinstance(k, str) and isinstance(v, str) and v.count(".") == 2 for k, v in m.items())
        if name != "relationship_synsets.json":  # we keep VG's own synset for every word VG has
            assert all(real.get(k, v) == v for k, v in m.items())


def test_graph_boxes_match_image_pixels(world_dir):
    from kgaug.synth.render import rgb, shaded

    graphs = json.loads((world_dir / "scene_graphs.json").read_text())
    for g in graphs:
        im = np.asarray(Image.open(world_dir / "images" / f"{g['image_id']}.png").convert("RGB"))
        byid = {o["object_id"]: o for o in g["objects"]}
        for o in g["objects"]:
            colour = next(a for a in o["attributes"] if a in {"red", "blue", "green", "yellow"})
            px = im[o["y"] + o["h"] // 2, o["x"] + o["w"] // 2]
            assert (px == rgb(colour)).all() or (px == shaded(colour)).all()
        for r in g["relationships"]:
            s, t = byid[r["subject_id"]], byid[r["object_id"]]
            if r["predicate"] == "left of":
                assert s["x"] + s["w"] <= t["x"]
            elif r["predicate"] == "right of":
                assert t["x"] + t["w"] <= s["x"]
            elif r["predicate"] == "above":
                assert s["y"] + s["h"] <= t["y"]
            else:
                assert r["predicate"] == "below" and t["y"] + t["h"] <= s["y"]


def test_sensitive_and_captions(world_dir):
    sens = json.loads((world_dir / "sensitive.json").read_text())
    caps = json.loads((world_dir / "captions.json").read_text())
    assert set(sens) == set(caps) == {str(i) for i in range(1, 61)}
    assert {v["group"] for v in sens.values()} == {"a", "b"}
    reg = json.loads((world_dir / "region_descriptions.json").read_text())
    assert [r["phrase"] for r in reg[0]["regions"]] == caps[str(reg[0]["id"])]


def test_eval_files(world_dir):
    ev = world_dir / "eval"
    for subset in text.SUBSETS:
        items = json.loads((ev / "sugarcrepe" / f"{subset}.json").read_text())
        assert items, subset
        for v in items.values():
            assert set(v) == {"filename", "caption", "negative_caption"}
            assert (ev / "images" / v["filename"]).is_file()
    for kind in ("shape", "colour"):
        d = ev / f"zeroshot_{kind}"
        classes = (d / "classnames.txt").read_text().split()
        assert sorted(p.name for p in d.iterdir() if p.is_dir()) == sorted(classes)
        assert all("{c}" in t for t in (d / "templates.txt").read_text().splitlines())
        assert all(any((d / c).iterdir()) for c in classes)
    spec = bias.load_pairs(ev / "bias")
    assert len(spec["pairs"]) == 40
    a = np.asarray(Image.open(ev / "bias" / spec["pairs"][0]["a"]))
    b = np.asarray(Image.open(ev / "bias" / spec["pairs"][0]["b"]))
    assert (a != b).any() and (a[0, 0] != b[0, 0]).any()


def test_bad_options_fail_clearly(tmp_path):
    r = CliRunner().invoke(app, ["synth", "--out", str(tmp_path), "--preset", "huge"])
    assert r.exit_code == 2 and "preset" in r.output


def test_association_gap_pure():
    rng = np.random.default_rng(0)
    scenes = rng.normal(size=(200, 16))
    concept = rng.normal(size=(3, 16))
    unbiased = bias.association_gap(scenes, scenes, concept)
    assert unbiased["gap"] == 0.0 and unbiased["share_a_closer"] == 0.0
    c = concept.mean(0) / np.linalg.norm(concept.mean(0))
    biased = bias.association_gap(scenes + 0.5 * c * np.linalg.norm(scenes, axis=1, keepdims=True), scenes, concept)
    assert biased["gap"] > 5 * biased["se"] > 0
    with pytest.raises(ValueError):
        bias.association_gap(scenes, scenes[:10], concept)


def test_bias_measure_runs_on_an_open_clip_model(world_dir):
    import open_clip
    import torch

    torch.manual_seed(0)
    model = open_clip.CLIP(embed_dim=16, vision_cfg={"image_size": 48, "layers": 1, "width": 32, "head_width": 16,
                                                     "patch_size": 8},
                           text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1})
    tok = open_clip.get_tokenizer("ViT-B-32", context_length=16)
    pre = open_clip.image_transform(48, is_train=False)
    res = bias.measure(model, pre, tok, world_dir / "eval" / "bias")
    assert res["pairs"] == 40 and res["concept"] == "red"
    assert -2.0 <= res["gap"] <= 2.0 and res["se"] >= 0.0 and 0.0 <= res["share_a_closer"] <= 1.0
