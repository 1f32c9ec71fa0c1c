"""The pure parts: choosing k, spherical k-means, kNN without self, the shard plan, row -> sample."""

from __future__ import annotations

import json

import numpy as np
import pytest

from clusterbuild import cluster as CL
from clusterbuild import contract as C
from clusterbuild import images, knn
from clusterbuild import write as W


def blobs(n_per: int = 40, k: int = 4, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.eye(d, dtype=np.float32)[:k] * 5
    x = np.concatenate([c + rng.normal(0, 0.3, (n_per, d)).astype(np.float32) for c in centres])
    return x, np.repeat(np.arange(k), n_per)


def test_choose_k():
    assert CL.choose_k(1000, clusters=10) == (10, "")
    assert CL.choose_k(1000, cluster_size=100) == (10, "")
    assert CL.choose_k(10, cluster_size=100) == (1, "")
    k, note = CL.choose_k(5, clusters=8)
    assert k == 5 and "only 5 samples" in note
    with pytest.raises(ValueError):
        CL.choose_k(10, clusters=2, cluster_size=3)
    with pytest.raises(ValueError):
        CL.choose_k(0, clusters=2)


def test_spherical_kmeans_recovers_blobs_and_records_subsampling():
    x, truth = blobs()
    r = CL.spherical_kmeans(x * 3.7, 4, seed=1)  # scale must not matter: inputs are normalised
    assert r.assign.shape == (160,) and sorted(r.sizes().tolist()) == [40, 40, 40, 40]
    for c in range(4):  # every true blob maps to exactly one cluster
        assert len(set(r.assign[truth == c].tolist())) == 1
    assert np.allclose(np.linalg.norm(r.centroids, axis=1), 1, atol=1e-4)
    assert r.params["spherical"] and not r.params["subsampled"] and r.params["n_train"] == 160
    small = CL.spherical_kmeans(x, 4, seed=1, max_points_per_centroid=10)
    assert small.params["subsampled"] and small.params["n_train"] == 40 and small.assign.shape == (160,)
    again = CL.spherical_kmeans(x * 3.7, 4, seed=1)
    assert np.array_equal(again.assign, r.assign)


def test_knn_excludes_self_and_flags_duplicates():
    x, truth = blobs(n_per=5, k=3)
    x, truth = np.concatenate([x, x[:1]]), np.append(truth, truth[0])  # row 15 duplicates row 0
    r = knn.nearest_others(x, k=3, dup_threshold=0.999)
    for i in range(len(x)):
        assert i not in r.index[i].tolist()
        assert np.all(np.diff(r.similarity[i]) <= 1e-6)
    assert r.index[0, 0] == 15 and r.index[15, 0] == 0 and r.near_duplicate[0, 0] and r.near_duplicate[15, 0]
    assert r.near_duplicate.sum() == 2
    assert all(truth[j] == truth[1] for j in r.index[1])  # neighbours come from the same blob
    one = knn.nearest_others(x[:1], k=3)
    assert (one.index == -1).all()


def test_plan_keeps_clusters_contiguous_and_shuffles_cluster_order():
    rows_ok = [10, 11, 12, 13, 14, 15, 16]
    assign = np.array([2, 0, 1, 2, 0, 1, 2])
    nn = np.array([[1, 2]] * 7)
    dup = np.zeros((7, 2), bool)
    dup[0, 1] = True
    orders = set()
    for seed in range(6):
        p = W.make_plan(rows_ok, assign, nn, dup, seed)
        cids = [p.cluster_id[r] for r in p.order]
        runs = [c for i, c in enumerate(cids) if i == 0 or cids[i - 1] != c]
        assert sorted(runs) == [0, 1, 2] and sorted(p.order) == rows_ok
        orders.add(tuple(runs))
        assert p.knn[10] == [11, 12] and p.near_duplicates[10] == [12]
    assert len(orders) > 1  # the seed changes the cluster order
    assert W.make_plan(rows_ok, assign, nn, dup, 3).order == W.make_plan(rows_ok, assign, nn, dup, 3).order
    p = W.make_plan(rows_ok, assign, nn, dup, 0)
    assert [len(s) for s in p.shards(3)] == [3, 3, 1]


def test_eligible_reasons():
    rows = [{"key": "a", "captions": ["x"]}, {"key": "a", "captions": ["y"]}, {"key": "b.c", "captions": ["x"]},
            {"key": "d", "captions": [], "pseudo_captions": [{"text": "p", "facts": []}]},
            {"key": "e", "captions": []}, {"key": "f", "captions": ["z"]}]
    ok, skipped = W.eligible(rows, ["", "", "", "", "", "missing_image"])
    assert ok == [0, 3]
    assert skipped == {1: "duplicate_key", 2: "invalid_key", 4: "no_caption", 5: "missing_image"}
    assert W.primary_caption(rows[3]) == "p"


def test_make_sample_from_row(tmp_path):
    from PIL import Image

    Image.new("RGB", (20, 10), (1, 2, 3)).save(tmp_path / "a.jpg")
    row = {"key": "k1", "image": str(tmp_path / "a.jpg"), "source": "coco", "captions": ["a cat", "a pet"],
           "pseudo_captions": [{"text": "cat", "facts": None, "style": "dense"}],
           "hard_negatives": [{"type": "swap_att", "text": "t", "from": "a", "to": "b", "fact": "f",
                               "plausibility": float("nan"), "caption": "a cat"},
                              {"type": "bogus", "text": "x", "from": "", "to": ""}],
           "scene_graph": '{"objects": [], "relations": []}', "sensitive": {"gender": "male"}, "license": None}
    s, bad = W.make_sample(row, images.prepare(row["image"]), 3, ["k2"], [], 0.5)
    assert bad == 1 and s.txt == "a cat" and s.image_ext == "jpg"
    assert C.validate_meta(s.meta, "k1") == []
    assert s.meta["hard_negatives"][0]["plausibility"] is None  # NaN is not JSON
    json.loads(C.dumps_json(s.meta))
    assert s.meta["pseudo_captions"] == [{"text": "cat", "facts": [], "style": "dense"}]
    assert (s.meta["width"], s.meta["height"], s.meta["weight"], s.meta["cluster_id"]) == (20, 10, 0.5, 3)


def test_balance_weights_equalise_groups_within_clusters():
    from clusterbuild import balance

    # cluster 0: 3 f, 1 m; cluster 1: 1 f, 1 m, 1 untagged
    groups = ["f", "f", "f", "m", "f", "m", None]
    clusters = [0, 0, 0, 0, 1, 1, 1]
    w = balance.group_weights(groups, clusters)
    assert w[6] == 1.0
    assert sum(w[:3]) == pytest.approx(w[3])  # equal mass per group inside cluster 0
    assert w[4] == pytest.approx(w[5])
    assert sum(w[:6]) / 6 == pytest.approx(1.0, abs=1e-5)  # mean weight of tagged rows stays 1
    s = balance.summary(groups, w)["groups"]
    assert s["f"]["share_before"] == pytest.approx(4 / 6, abs=1e-3) and s["f"]["share_after"] == pytest.approx(0.5, abs=1e-3)
    capped = balance.group_weights(["f"] * 20 + ["m"], [0] * 21, max_ratio=2.0)
    assert max(capped) / min(capped) <= 4.0 + 1e-6


def _graph_row(key, objects, relations=(), captions=("",)):
    objs = [{"id": str(i), "name": n, "attributes": list(a)} for i, (n, a) in enumerate(objects)]
    return {"key": key, "captions": list(captions),
            "scene_graph": json.dumps({"objects": objs, "relations": [list(r) for r in relations]})}


def test_graph_vectors_group_the_same_words_whatever_their_binding_or_order():
    from clusterbuild import graphvec as GV

    rows = [_graph_row("a", [("cube", ["red"]), ("ball", ["blue"])], [("0", "left of", "1")]),
            _graph_row("b", [("ball", ["blue"]), ("cube", ["red"])], [("0", "left of", "1")]),  # reversed
            _graph_row("c", [("cube", ["blue"]), ("ball", ["red"])], [("0", "left of", "1")]),  # swapped colours
            _graph_row("d", [("cube", ["green"]), ("ball", ["blue"])]),
            {"key": "e", "captions": ["A red cube and a blue ball."], "scene_graph": ""}]  # no graph: caption words
    x = GV.graph_vectors(rows, dim=64)
    assert x.shape == (5, 64) and np.allclose(np.linalg.norm(x, axis=1), 1.0)
    assert np.allclose(x[0], x[1]) and np.allclose(x[0], x[2]) and np.allclose(x[0], x[4])
    assert float(x[0] @ x[3]) < 0.99
    assert GV.distinct_rows(x) == 2 and GV.has_graph(rows[0]) and not GV.has_graph(rows[4])
    assert np.array_equal(GV.graph_vectors(rows, dim=64), x)  # deterministic (crc32 buckets)


def test_cluster_space_auto_follows_the_share_of_rows_with_graphs():
    from clusterbuild import pipeline as P

    g = [_graph_row(str(i), [("cube", ["red"])]) for i in range(10)]
    assert P.cluster_space("auto", g) == "graph"
    assert P.cluster_space("auto", g[:8] + [{"key": "x", "captions": ["a"]}] * 2) == "image"
    assert P.cluster_space("image", g) == "image"
    with pytest.raises(ValueError, match="--cluster-on"):
        P.cluster_space("pixels", g)
