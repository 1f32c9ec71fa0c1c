"""clusterbuild.balance: M4-style per-sample weights."""

from __future__ import annotations

import pytest


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
