"""Nearest other images (NegCLIP-style hard image negatives) and near-duplicate flags.

Exact inner-product search (`IndexFlatIP`) over L2-normalised image embeddings; the query itself is
removed from its own list. Pairs above `dup_threshold` are flagged as near-duplicates: for a
contrastive trainer they are likely false negatives, so the trainer masks them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEFAULT_KNN = 3
DEFAULT_DUP_THRESHOLD = 0.97
_QUERY_BATCH = 16384


@dataclass
class KnnResult:
    index: np.ndarray  # n x k int64 row indices into the searched set (-1 = none)
    similarity: np.ndarray  # n x k float32 cosine similarities
    near_duplicate: np.ndarray  # n x k bool, similarity >= threshold
    threshold: float


def nearest_others(x: np.ndarray, k: int = DEFAULT_KNN, dup_threshold: float = DEFAULT_DUP_THRESHOLD,
                   use_gpu: bool = False, normalized: bool = False) -> KnnResult:
    """For each row of `x`, the `k` most similar *other* rows (by cosine), best first."""
    import faiss

    from clusterbuild.cluster import normalize

    xn = x if normalized else normalize(x)
    n, d = xn.shape
    k_eff = min(k, max(n - 1, 0))
    idx_out = np.full((n, k), -1, np.int64)
    sim_out = np.zeros((n, k), np.float32)
    if k_eff == 0:
        return KnnResult(idx_out, sim_out, np.zeros((n, k), bool), dup_threshold)
    index = faiss.IndexFlatIP(d)
    if use_gpu:
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(xn)
    for lo in range(0, n, _QUERY_BATCH):
        q = xn[lo:lo + _QUERY_BATCH]
        sim, idx = index.search(q, k_eff + 1)
        for j in range(len(q)):
            row = lo + j
            keep = idx[j] != row
            if keep.all():  # self not in the list (ties with duplicates): drop the last one
                keep[-1] = False
            ids, ss = idx[j][keep][:k_eff], sim[j][keep][:k_eff]
            idx_out[row, :len(ids)] = ids
            sim_out[row, :len(ss)] = ss
    dup = (sim_out >= dup_threshold) & (idx_out >= 0)
    return KnnResult(idx_out, sim_out, dup, dup_threshold)
