"""Optional M4-style sample weights: equal shares for the groups of one sensitive attribute.

Weights are computed per cluster, because clusters stand for visual concepts: giving every group of
the attribute (say gender) the same total weight inside each cluster makes the groups' shares equal
overall *and* removes their correlation with the clustered concepts (no cluster is "mostly one
group" any more, in weight). Rows without a tag for the attribute keep weight 1. Weights are clipped
to `[1/max_ratio, max_ratio]` so a rare group is not blown up into a few huge-weight samples, then
rescaled so tagged rows keep a mean weight of 1 (the loss scale does not move).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

DEFAULT_MAX_RATIO = 5.0


def group_weights(groups: Sequence[str | None], clusters: Sequence[int],
                  max_ratio: float = DEFAULT_MAX_RATIO) -> list[float]:
    """Per-row weights; `groups[i]` is the row's value of the attribute (None = not tagged)."""
    if len(groups) != len(clusters):
        raise ValueError("groups and clusters differ in length")
    per_cluster: dict[int, Counter] = {}
    for g, c in zip(groups, clusters):
        if g is not None:
            per_cluster.setdefault(c, Counter())[g] += 1
    raw = []
    for g, c in zip(groups, clusters):
        if g is None:
            raw.append(None)
            continue
        counts = per_cluster[c]
        target = sum(counts.values()) / len(counts)  # equal share for each group present in the cluster
        raw.append(min(max(target / counts[g], 1 / max_ratio), max_ratio))
    tagged = [w for w in raw if w is not None]
    scale = len(tagged) / sum(tagged) if tagged else 1.0
    return [1.0 if w is None else round(w * scale, 6) for w in raw]


def summary(groups: Sequence[str | None], weights: Sequence[float]) -> dict:
    """Share of each group before and after weighting (what `_info.json` reports)."""
    count, mass = Counter(), Counter()
    for g, w in zip(groups, weights):
        if g is not None:
            count[g] += 1
            mass[g] += w
    n, m = sum(count.values()) or 1, sum(mass.values()) or 1
    return {"groups": {g: {"rows": count[g], "share_before": round(count[g] / n, 4),
                           "share_after": round(mass[g] / m, 4)} for g in sorted(count)}}
