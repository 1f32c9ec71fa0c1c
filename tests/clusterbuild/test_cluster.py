"""clusterbuild.cluster: choosing k and FAISS spherical k-means."""

from __future__ import annotations

import numpy as np
import pytest

from clusterbuild import cluster
from tests.clusterbuild.helpers import blobs


def test_choose_k():
    assert cluster.choose_k(1000, clusters=10) == (10, "")
    assert cluster.choose_k(1000, cluster_size=100) == (10, "")
    assert cluster.choose_k(10, cluster_size=100) == (1, "")
    k, note = cluster.choose_k(5, clusters=8)
    assert k == 5 and "only 5 samples" in note
    with pytest.raises(ValueError):
        cluster.choose_k(10, clusters=2, cluster_size=3)
    with pytest.raises(ValueError):
        cluster.choose_k(0, clusters=2)


def test_spherical_kmeans_recovers_blobs_and_records_subsampling():
    x, truth = blobs()
    r = cluster.spherical_kmeans(x * 3.7, 4, seed=1)  # scale must not matter: inputs are normalised
    assert r.assign.shape == (160,) and sorted(r.sizes().tolist()) == [40, 40, 40, 40]
    for c in range(4):  # every true blob maps to exactly one cluster
        assert len(set(r.assign[truth == c].tolist())) == 1
    assert np.allclose(np.linalg.norm(r.centroids, axis=1), 1, atol=1e-4)
    assert r.params["spherical"] and not r.params["subsampled"] and r.params["n_train"] == 160
    small = cluster.spherical_kmeans(x, 4, seed=1, max_points_per_centroid=10)
    assert small.params["subsampled"] and small.params["n_train"] == 40 and small.assign.shape == (160,)
    again = cluster.spherical_kmeans(x * 3.7, 4, seed=1)
    assert np.array_equal(again.assign, r.assign)
