"""clusterbuild.write: the shard plan (clusters contiguous), which rows can be written, row -> sample."""

from __future__ import annotations

import json

import numpy as np

from clusterbuild import contract, images
from clusterbuild import write as shard_writer


def test_plan_keeps_clusters_contiguous_and_shuffles_cluster_order():
    rows_ok = [10, 11, 12, 13, 14, 15, 16]
    assign = np.array([2, 0, 1, 2, 0, 1, 2])
    nn = np.array([[1, 2]] * 7)
    dup = np.zeros((7, 2), bool)
    dup[0, 1] = True
    orders = set()
    for seed in range(6):
        p = shard_writer.make_plan(rows_ok, assign, nn, dup, seed)
        cids = [p.cluster_id[r] for r in p.order]
        runs = [c for i, c in enumerate(cids) if i == 0 or cids[i - 1] != c]
        assert sorted(runs) == [0, 1, 2] and sorted(p.order) == rows_ok
        orders.add(tuple(runs))
        assert p.knn[10] == [11, 12] and p.near_duplicates[10] == [12]
    assert len(orders) > 1  # the seed changes the cluster order
    assert shard_writer.make_plan(rows_ok, assign, nn, dup, 3).order == shard_writer.make_plan(rows_ok, assign, nn, dup, 3).order
    p = shard_writer.make_plan(rows_ok, assign, nn, dup, 0)
    assert [len(s) for s in p.shards(3)] == [3, 3, 1]


def test_eligible_reasons():
    rows = [{"key": "a", "captions": ["x"]}, {"key": "a", "captions": ["y"]}, {"key": "b.c", "captions": ["x"]},
            {"key": "d", "captions": [], "pseudo_captions": [{"text": "p", "facts": []}]},
            {"key": "e", "captions": []}, {"key": "f", "captions": ["z"]}]
    ok, skipped = shard_writer.eligible(rows, ["", "", "", "", "", "missing_image"])
    assert ok == [0, 3]
    assert skipped == {1: "duplicate_key", 2: "invalid_key", 4: "no_caption", 5: "missing_image"}
    assert shard_writer.primary_caption(rows[3]) == "p"


def test_make_sample_from_row(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 10), (1, 2, 3)).save(tmp_path / "a.jpg")
    row = {"key": "k1", "image": str(tmp_path / "a.jpg"), "source": "coco", "captions": ["a cat", "a pet"],
           "pseudo_captions": [{"text": "cat", "facts": None, "style": "dense"}],
           "hard_negatives": [{"type": "swap_att", "text": "t", "from": "a", "to": "b", "fact": "f",
                               "plausibility": float("nan"), "caption": "a cat"},
                              {"type": "bogus", "text": "x", "from": "", "to": ""}],
           "scene_graph": '{"objects": [], "relations": []}', "sensitive": {"gender": "male"}, "license": None}
    s, bad = shard_writer.make_sample(row, images.prepare(row["image"]), 3, ["k2"], [], 0.5)
    assert bad == 1 and s.txt == "a cat" and s.image_ext == "jpg"
    assert contract.validate_meta(s.meta, "k1") == []
    assert s.meta["hard_negatives"][0]["plausibility"] is None  # NaN is not JSON
    json.loads(contract.dumps_json(s.meta))
    assert s.meta["pseudo_captions"] == [{"text": "cat", "facts": [], "style": "dense"}]
    assert (s.meta["width"], s.meta["height"], s.meta["weight"], s.meta["cluster_id"]) == (20, 10, 0.5, 3)
