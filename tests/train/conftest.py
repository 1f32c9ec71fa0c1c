"""Shards built from the real COCO val2017 mini photos and captions (no clusterbuild run needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clusterbuild import contract, shardio
from kgclip.page import thumbnail

N_IMAGES = 16


def _small_jpeg(path: Path, side: int = 96) -> bytes:
    return thumbnail(path, side, quality=85)


def coco_samples(coco_dir: Path, n: int = N_IMAGES) -> list[contract.Sample]:
    ann = json.loads((coco_dir / "captions_val2017_subset.json").read_text())
    caps: dict[int, list[str]] = {}
    for a in ann["annotations"]:
        caps.setdefault(a["image_id"], []).append(a["caption"].strip())
    images = sorted((im for im in ann["images"] if im["id"] in caps), key=lambda im: im["file_name"])[:n]
    samples = []
    for i, im in enumerate(images):
        key = Path(im["file_name"]).stem
        cs = sorted(caps[im["id"]])
        first = cs[0].rstrip(". ")
        negs = [{"type": "add_obj", "text": f"{first} next to a purple giraffe", "from": "", "to": "purple giraffe"}]
        if " a " in f" {first.lower()} ":
            negs.append({"type": "add_att", "text": first.lower().replace("a ", "a striped ", 1), "from": "",
                         "to": "striped"})
        text = " ".join(cs).lower()
        sens = {"gender": "male"} if " man " in f" {text} " else ({"gender": "female"} if "woman" in text else {})
        extra = {"near_duplicates": [Path(images[0]["file_name"]).stem]} if i == 1 else {}
        meta = contract.make_meta(key, "coco", cs, [{"text": "a photo of " + " ".join(first.split()[:4]), "facts": []}],
                           negs, cluster_id=i // 4, knn=[], sensitive=sens, weight=1.0 + 0.1 * (i % 3),
                           image=im["file_name"], **extra)
        samples.append(contract.Sample(key, _small_jpeg(coco_dir / "images" / im["file_name"]), "jpg", cs[0], meta))
    return samples


@pytest.fixture(scope="session")
def coco_shards(coco_mini_dir, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("coco_shards")
    shardio.write_shard_set(folder, coco_samples(coco_mini_dir), samples_per_shard=8)
    return folder
