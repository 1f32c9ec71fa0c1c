"""clusterbuild.knn: nearest other images, without self, and near-duplicate flags."""

from __future__ import annotations

import numpy as np

from clusterbuild import knn
from tests.clusterbuild.helpers import blobs


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
