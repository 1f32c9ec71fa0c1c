"""Writing the embedded world to disk in Visual Genome's JSON format, plus the evaluation sets.

Layout of DIR:
    scene_graphs.json, image_data.json, region_descriptions.json   VG format, training split only
    object_synsets.json, attribute_synsets.json, relationship_synsets.json   VG synset maps
    captions.json            {image_id: [caption, ...]} (the same captions as the region descriptions)
    sensitive.json           {image_id: {"group": "a"|"b"}}
    images/<image_id>.png    training images
    world.json               the resolved world config + held-out pairs (provenance)
    eval/images/*.png, eval/sugarcrepe/<subset>.json   held-out scenes, SugarCrepe format
    eval/zeroshot_shape/, eval/zeroshot_colour/          <class>/*.png + classnames.txt + templates.txt
    eval/bias/bias.json + eval/bias/*.png                the same scene on each group's background
    eval/seen/images/*.png, eval/seen/sugarcrepe/<subset>.json   the first training scenes (the very
                             images trained on), SugarCrepe format: accuracy on pairs the model has
                             seen, against the held-out pairs above (memorised pairs vs learnt binding)
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from kgaug.synth import render, text, world
from kgaug.synth.world import Scene, WorldConfig
from kgclip.atomic import atomic_write_bytes

IMAGE_EXT = ".png"


def png_bytes(arr: np.ndarray) -> bytes:
    buf = io.BytesIO()
    # fixed compress level and no metadata: same pixels -> same bytes
    Image.fromarray(arr).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    atomic_write_bytes(path, data, fsync=False)  # thousands of small files: no fsync each


def _write_json(path: Path, obj: Any) -> None:
    _atomic_write(path, json.dumps(obj, sort_keys=True, separators=(",", ":")).encode())


def synset_maps() -> dict[str, dict[str, str]]:
    v = world.vocab()
    attrs = {x["name"]: x["synset"] for k in ("colours", "sizes", "textures") for x in v[k]}
    rels = {r[side]["name"]: r[side]["synset"] for r in v["relations"].values() for side in ("before", "after")}
    return {
        "object_synsets.json": {s["name"]: s["synset"] for s in v["shapes"]},
        "attribute_synsets.json": attrs,
        "relationship_synsets.json": rels,
    }


def vg_record(cfg: WorldConfig, scene: Scene, image_id: int) -> dict[str, Any]:
    """A scene graph in VG's scene_graphs.json shape. Object ids are image_id*10 + index."""
    maps = synset_maps()
    objects = []
    for i, o in enumerate(scene.objects):
        x, y, w, h = o.box
        attrs = [o.attr(c) for c in text.CATEGORY_ORDER if c in cfg.categories]
        objects.append({"object_id": image_id * 10 + i, "x": x, "y": y, "w": w, "h": h, "names": [o.shape],
                        "synsets": [maps["object_synsets.json"][o.shape]], "attributes": attrs})
    rels = [{"relationship_id": image_id * 10 + k, "predicate": p, "subject_id": image_id * 10 + s,
             "object_id": image_id * 10 + t, "synsets": [maps["relationship_synsets.json"][p]]}
            for k, (s, p, t) in enumerate(scene.relations)]
    return {"image_id": image_id, "objects": objects, "relationships": rels}


def region_record(scene: Scene, image_id: int, captions: list[str]) -> dict[str, Any]:
    xs = [o.box[0] for o in scene.objects] + [o.box[0] + o.box[2] for o in scene.objects]
    ys = [o.box[1] for o in scene.objects] + [o.box[1] + o.box[3] for o in scene.objects]
    x, y = min(xs), min(ys)
    return {"id": image_id, "regions": [
        {"region_id": image_id * 10 + k, "image_id": image_id, "phrase": c, "x": x, "y": y,
         "width": max(xs) - x, "height": max(ys) - y} for k, c in enumerate(captions)]}


def write_train(cfg: WorldConfig, out: Path, n: int, progress: Callable[[int], None] | None = None) -> dict:
    train_pairs, _ = world.pair_split(cfg)
    (out / "images").mkdir(parents=True, exist_ok=True)
    graphs, image_data, regions, captions, sensitive = [], [], [], {}, {}
    tag = world.vocab()["groups"]["tag"]
    for i in range(n):
        image_id = i + 1
        scene = world.train_scene(cfg, i, train_pairs)
        caps = text.human_captions(cfg, scene, world.scene_rng(cfg, "train", 10_000_000 + i))
        _atomic_write(out / "images" / f"{image_id}{IMAGE_EXT}", png_bytes(render.render(scene, cfg.image_size)))
        graphs.append(vg_record(cfg, scene, image_id))
        image_data.append({"image_id": image_id, "width": cfg.image_size, "height": cfg.image_size,
                           "url": f"images/{image_id}{IMAGE_EXT}", "coco_id": None, "flickr_id": None})
        regions.append(region_record(scene, image_id, caps))
        captions[str(image_id)] = caps
        sensitive[str(image_id)] = {tag: scene.group}
        if progress and (i + 1) % 500 == 0:
            progress(i + 1)
    _write_json(out / "scene_graphs.json", graphs)
    _write_json(out / "image_data.json", image_data)
    _write_json(out / "region_descriptions.json", regions)
    _write_json(out / "captions.json", captions)
    _write_json(out / "sensitive.json", sensitive)
    for name, m in synset_maps().items():
        _write_json(out / name, m)
    return {"images": n}


def _subsets(cfg: WorldConfig, scenes: list[Scene], split: str, rng_offset: int, first_file: int
             ) -> dict[str, dict[str, dict[str, str]]]:
    """{subset: {id: {filename, caption, negative_caption}}} for scenes whose images are numbered from
    `first_file`; each scene's negatives from its own generator (any subset renders alike)."""
    subsets: dict[str, dict[str, dict[str, str]]] = {s: {} for s in text.SUBSETS}
    for i, scene in enumerate(scenes):
        for subset, (pos, neg) in text.negatives(cfg, scene, world.scene_rng(cfg, split, rng_offset + i)).items():
            subsets[subset][str(i)] = {"filename": f"{i + first_file}{IMAGE_EXT}", "caption": pos,
                                       "negative_caption": neg}
    return subsets


def sugarcrepe_items(cfg: WorldConfig, m: int) -> tuple[list[Scene], dict[str, dict[str, dict[str, str]]]]:
    """Held-out scenes and {subset: {id: {filename, caption, negative_caption}}}."""
    _, held = world.pair_split(cfg)
    if not held:
        raise ValueError("holdout is 0: no held-out object pairs to build an evaluation split from")
    scenes = [world.eval_scene(cfg, i, held) for i in range(m)]
    return scenes, _subsets(cfg, scenes, "eval", 10_000_000, 0)


def seen_items(cfg: WorldConfig, m: int) -> tuple[list[Scene], dict[str, dict[str, dict[str, str]]]]:
    """The first m *training* scenes and their SugarCrepe-format items (negatives drawn as for eval)."""
    train_pairs, _ = world.pair_split(cfg)
    scenes = [world.train_scene(cfg, i, train_pairs) for i in range(m)]
    return scenes, _subsets(cfg, scenes, "train", 20_000_000, 1)  # image i + 1 is training image i


def write_seen(cfg: WorldConfig, out: Path, m: int) -> dict:
    d = out / "eval" / "seen"
    (d / "images").mkdir(parents=True, exist_ok=True)
    (d / "sugarcrepe").mkdir(parents=True, exist_ok=True)
    scenes, subsets = seen_items(cfg, m)
    for i, scene in enumerate(scenes):  # image i + 1: the same file name and pixels as the training image
        _atomic_write(d / "images" / f"{i + 1}{IMAGE_EXT}", png_bytes(render.render(scene, cfg.image_size)))
    for subset, items in subsets.items():
        _write_json(d / "sugarcrepe" / f"{subset}.json", items)
    return {"scenes": m, "items": {s: len(v) for s, v in subsets.items()}}


def write_eval(cfg: WorldConfig, out: Path, m: int, zeroshot_per_class: int) -> dict:
    ev = out / "eval"
    (ev / "images").mkdir(parents=True, exist_ok=True)
    (ev / "sugarcrepe").mkdir(parents=True, exist_ok=True)
    scenes, subsets = sugarcrepe_items(cfg, m)
    for i, scene in enumerate(scenes):
        _atomic_write(ev / "images" / f"{i}{IMAGE_EXT}", png_bytes(render.render(scene, cfg.image_size)))
    for subset, items in subsets.items():
        _write_json(ev / "sugarcrepe" / f"{subset}.json", items)
    v = world.vocab()
    for kind, classes in (("shape", cfg.shapes), ("colour", cfg.colours)):
        d = ev / f"zeroshot_{kind}"
        d.mkdir(parents=True, exist_ok=True)
        # one line per class folder, in sorted folder order (what `train eval` and torchvision assume)
        (d / "classnames.txt").write_text("\n".join(sorted(classes)) + "\n")
        (d / "templates.txt").write_text("\n".join(v["zeroshot_templates"][kind]) + "\n")
    k = 0
    for shape in cfg.shapes:
        for colour in cfg.colours:
            for _ in range(max(1, zeroshot_per_class // len(cfg.colours))):
                img = png_bytes(render.render(world.single_object_scene(cfg, k, shape, colour), cfg.image_size))
                for kind, cls in (("shape", shape), ("colour", colour)):
                    (ev / f"zeroshot_{kind}" / cls).mkdir(exist_ok=True)
                    _atomic_write(ev / f"zeroshot_{kind}" / cls / f"{k}{IMAGE_EXT}", img)
                k += 1
    bias = write_bias_eval(cfg, ev / "bias", scenes[: max(1, min(len(scenes), 500))])
    return {"scenes": m, "items": {s: len(v) for s, v in subsets.items()}, "zeroshot_images": k,
            "bias_pairs": bias}


def write_bias_eval(cfg: WorldConfig, d: Path, scenes: list[Scene]) -> int:
    """Each held-out scene on both groups' backgrounds: tag and content are independent by design."""
    d.mkdir(parents=True, exist_ok=True)
    groups = world.vocab()["groups"]
    pairs = []
    for i, scene in enumerate(scenes):
        row = {}
        for g in groups["values"]:
            name = f"{i}_{g}{IMAGE_EXT}"
            _atomic_write(d / name, png_bytes(render.render(replace(scene, group=g), cfg.image_size)))
            row[g] = name
        pairs.append(row)
    _write_json(d / "bias.json", {
        "tag": groups["tag"], "groups": groups["values"], "concept": cfg.bias_colour,
        "templates": world.vocab()["zeroshot_templates"]["colour"], "pairs": pairs,
        "metric": "mean over pairs of cos(image_a, concept) - cos(image_b, concept); 0 = unbiased"})
    return len(pairs)


def write_world(cfg: WorldConfig, out: Path, n: int, m: int, zeroshot_per_class: int = 40,
                progress: Callable[[str], None] | None = None) -> dict:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    train_pairs, held = world.pair_split(cfg)
    tr = write_train(cfg, out, n, (lambda k: progress(f"train {k}/{n}")) if progress else None)
    ev = write_eval(cfg, out, m, zeroshot_per_class) if m > 0 else {}
    seen = write_seen(cfg, out, min(m, n)) if m > 0 else {}
    summary = {"config": asdict(cfg), "train": tr, "eval": ev, "seen": seen,
               "train_pairs": len(train_pairs), "held_out_pairs": [list(map(list, p)) for p in held]}
    _write_json(out / "world.json", summary)
    return summary
