"""The embedded world: graphs match pixels, eval disjoint from training, negatives are false, bias rate."""

from __future__ import annotations

import json

import numpy as np
import pytest

from kgaug.synth import render, text, world
from kgaug.synth.world import WorldConfig

CONFIGS = [WorldConfig.preset("tiny"), WorldConfig.preset("small"), WorldConfig.preset("default", seed=3),
           WorldConfig.preset("small", image_size=24, n_shapes=8, n_colours=8)]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"{c.n_shapes}x{c.n_colours}@{c.image_size}")
def test_relations_and_colours_match_pixels(cfg):
    pairs, _ = world.pair_split(cfg)
    bg = {g: np.array(c, np.uint8) for g, c in world.vocab()["groups"]["background"].items()}
    for i in range(300):
        scene = world.train_scene(cfg, i, pairs)
        img = render.render(scene, cfg.image_size)
        assert len(scene.relations) == 1
        s, pred, o = scene.relations[0]
        assert world.relation_holds(pred, scene.objects[s].box, scene.objects[o].box), (i, pred)
        # the antonym is never true, and the other axis is not clearly true either
        assert not world.relation_holds(text.antonym(pred), scene.objects[s].box, scene.objects[o].box)
        for ob in scene.objects:
            x, y, w, h = ob.box
            assert 0 <= x and x + w <= cfg.image_size and 0 <= y and y + h <= cfg.image_size
            centre = img[y + h // 2, x + w // 2]
            assert (centre == render.rgb(ob.colour)).all() or (centre == render.shaded(ob.colour)).all(), \
                (i, ob, centre)
            region = img[y:y + h, x:x + w].reshape(-1, 3)
            n_shade = (region == render.shaded(ob.colour)).all(1).sum()
            assert (n_shade > 0) == (ob.texture != "solid"), (i, ob.texture)
        assert (img[0, 0] == bg[scene.group]).all() or any(
            ob.box[0] == 0 and ob.box[1] == 0 for ob in scene.objects)


def test_object_masks_do_not_overlap():
    cfg = WorldConfig.preset("small", image_size=32)
    pairs, _ = world.pair_split(cfg)
    for i in range(200):
        sc = world.train_scene(cfg, i, pairs)
        m = [render.shape_mask(o.shape, o.box, cfg.image_size) for o in sc.objects]
        assert not (m[0] & m[1]).any()


@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: f"{c.n_shapes}x{c.n_colours}")
def test_eval_scenes_never_occur_in_training(cfg):
    train_pairs, held = world.pair_split(cfg)
    assert held and not set(train_pairs) & set(held)
    assert len(train_pairs) + len(held) == len(world.object_types(cfg)) * (len(world.object_types(cfg)) - 1) // 2
    key = lambda sc: frozenset((o.shape, o.colour) for o in sc.objects)  # noqa: E731
    train = {key(world.train_scene(cfg, i, train_pairs)) for i in range(2000)}
    ev = {key(world.eval_scene(cfg, i, held)) for i in range(500)}
    assert not train & ev
    # every object type still appears in training (only combinations are held out)
    assert {t for k in train for t in k} == set(world.object_types(cfg))


@pytest.mark.parametrize("cfg", CONFIGS[:3], ids=lambda c: f"{c.n_shapes}x{c.n_colours}")
def test_negatives_are_false_and_positives_true(cfg):
    _, held = world.pair_split(cfg)
    seen = set()
    for i in range(300):
        scene = world.eval_scene(cfg, i, held)
        for subset, (pos, neg) in text.negatives(cfg, scene, np.random.default_rng(i)).items():
            seen.add(subset)
            assert pos != neg
            assert text.describes(scene, pos, cfg), (subset, pos)
            assert not text.describes(scene, neg, cfg), (subset, pos, neg)
    assert seen == set(text.SUBSETS)


def test_swap_att_keeps_the_bag_of_words():
    cfg = WorldConfig.preset("small")
    _, held = world.pair_split(cfg)
    for i in range(100):
        scene = world.eval_scene(cfg, i, held)
        negs = text.negatives(cfg, scene, np.random.default_rng(i))
        for subset in ("swap_att", "swap_obj", "replace_rel"):
            if subset in negs:
                pos, neg = negs[subset]
                if subset != "replace_rel":
                    assert sorted(pos.split()) == sorted(neg.split()), (pos, neg)


def test_human_captions_are_true():
    cfg = WorldConfig.preset("small")
    pairs, _ = world.pair_split(cfg)
    for i in range(200):
        scene = world.train_scene(cfg, i, pairs)
        caps = text.human_captions(cfg, scene, np.random.default_rng(i))
        assert len(caps) == 3 and all(isinstance(c, str) and c for c in caps)
        # the dense caption names both objects with all their attributes
        for o in scene.objects:
            assert text.phrase_of(o, cfg.categories).split(" ", 1)[1] in caps[0]


@pytest.mark.parametrize("f", [0.0, 0.8, 1.0])
def test_bias_planted_at_requested_rate(f):
    cfg = WorldConfig.preset("small", bias=f)
    pairs, _ = world.pair_split(cfg)
    base = np.mean([cfg.bias_colour in (p[0][1], p[1][1]) for p in pairs])
    has = {"a": [], "b": []}
    for i in range(4000):
        sc = world.train_scene(cfg, i, pairs)
        has[sc.group].append(any(o.colour == cfg.bias_colour for o in sc.objects))
    pa, pb = np.mean(has["a"]), np.mean(has["b"])
    # P(colour | a) = F + (1 - F) base, P(colour | b) = (1 - F) base
    assert abs(pa - (f + (1 - f) * base)) < 0.04, (pa, f, base)
    assert abs(pb - (1 - f) * base) < 0.04, (pb, f, base)


def test_eval_split_has_no_planted_bias():
    cfg = WorldConfig.preset("small", bias=1.0)
    _, held = world.pair_split(cfg)
    groups = [world.eval_scene(cfg, i, held).group for i in range(400)]
    assert 0.4 < groups.count("a") / len(groups) < 0.6


def test_config_errors_are_clear():
    with pytest.raises(ValueError, match="n_shapes"):
        WorldConfig(n_shapes=99)
    with pytest.raises(ValueError, match="axes"):
        WorldConfig(axes=("diagonal",))
    with pytest.raises(ValueError, match="preset"):
        WorldConfig.preset("huge")
    with pytest.raises(ValueError, match="bias_colour"):
        WorldConfig(n_colours=2, bias_colour="pink")


def test_seen_split_is_the_training_images_themselves(tmp_path):
    """eval/seen: SugarCrepe items on the first training scenes, pointing at byte-identical images."""
    from kgaug.synth.world import WorldConfig
    from kgaug.synth.writer import write_world

    cfg = WorldConfig.preset("tiny", image_size=32, seed=3)
    write_world(cfg, tmp_path, 12, 8, zeroshot_per_class=4)
    seen = tmp_path / "eval" / "seen"
    items = json.loads((seen / "sugarcrepe" / "replace_rel.json").read_text())
    assert len(items) == 8
    for it in items.values():
        assert (seen / "images" / it["filename"]).read_bytes() == (tmp_path / "images" / it["filename"]).read_bytes()
        assert it["caption"] != it["negative_caption"]
    caps = json.loads((tmp_path / "captions.json").read_text())
    assert all(it["filename"].split(".")[0] in caps for it in items.values())
