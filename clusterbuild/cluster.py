"""FAISS spherical k-means over L2-normalised embeddings: choosing k, training, assigning all.

`faiss.Kmeans(spherical=True)` only normalises the centroids, so inputs are normalised here first.
Above `k * max_points_per_centroid` points FAISS trains on a random subsample; the result records
that, so a reader of `_info.json` knows what the centroids were fitted on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

DEFAULT_NITER = 20
DEFAULT_MAX_POINTS_PER_CENTROID = 256  # FAISS's default
DEFAULT_CLUSTER_SIZE = 256


def choose_k(n: int, clusters: int | None = None, cluster_size: int | None = None) -> tuple[int, str]:
    """(k, note): k from `clusters`, or from a target `cluster_size`; never more than n points."""
    if n <= 0:
        raise ValueError("nothing to cluster: no embedded rows")
    if clusters is not None and cluster_size is not None:
        raise ValueError("give --clusters or --cluster-size, not both")
    if clusters is not None:
        if clusters < 1:
            raise ValueError(f"--clusters must be >= 1, got {clusters}")
        k = clusters
    else:
        size = cluster_size or DEFAULT_CLUSTER_SIZE
        if size < 1:
            raise ValueError(f"--cluster-size must be >= 1, got {size}")
        k = max(1, round(n / size))
    if k > n:
        return n, f"asked for {k} clusters but only {n} samples: using k={n}"
    return k, ""


@dataclass
class KMeansResult:
    centroids: np.ndarray  # k x d float32, unit norm
    assign: np.ndarray  # n int64, cluster of every point
    similarity: np.ndarray  # n float32, cosine to its centroid
    k: int
    params: dict = field(default_factory=dict)

    def sizes(self) -> np.ndarray:
        return np.bincount(self.assign, minlength=self.k)


def normalize(x: np.ndarray) -> np.ndarray:
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32).copy()
    faiss.normalize_L2(x)
    return x


def gpu_available() -> int:
    import faiss

    return int(faiss.get_num_gpus()) if hasattr(faiss, "get_num_gpus") else 0


FAISS_MIN_POINTS_PER_CENTROID = 39  # FAISS's default: fewer points per cluster give uneven clusters


def spherical_kmeans(x: np.ndarray, k: int, niter: int = DEFAULT_NITER, seed: int = 0,
                     max_points_per_centroid: int = DEFAULT_MAX_POINTS_PER_CENTROID,
                     use_gpu: bool = False, normalized: bool = False, distinct: bool = False) -> KMeansResult:
    """Spherical k-means of the rows of `x` into `k` clusters; every row assigned.

    `distinct`: fit on the distinct rows only (many identical vectors — the scene-graph word sets of
    `--cluster-on graph` — would otherwise seed several centroids on one point and merge others)."""
    import faiss

    xn = x if normalized else normalize(x)
    fit = np.ascontiguousarray(np.unique(xn, axis=0)) if distinct else xn
    n, d = fit.shape
    if k > n:
        raise ValueError(f"k={k} clusters for {n} points: FAISS needs n >= k")
    # min_points_per_centroid only decides when FAISS prints its own raw warning to stderr; the caller
    # says it in words instead (`few_points` below).
    km = faiss.Kmeans(d, k, niter=niter, seed=seed, spherical=True, min_points_per_centroid=1,
                      max_points_per_centroid=max_points_per_centroid, gpu=bool(use_gpu), verbose=False)
    km.train(fit)
    sim, idx = km.index.search(xn, 1)
    stats = km.iteration_stats
    params = {
        "k": k, "niter": niter, "seed": seed, "spherical": True, "n": int(xn.shape[0]), "dim": d,
        "fit_on_distinct_rows": n if distinct else None,
        "max_points_per_centroid": max_points_per_centroid,
        "few_points": n < k * FAISS_MIN_POINTS_PER_CENTROID,
        "subsampled": n > k * max_points_per_centroid,
        "n_train": min(n, k * max_points_per_centroid),
        "gpu": bool(use_gpu), "objective": float(stats[-1]["obj"]) if stats else None,
    }
    return KMeansResult(np.asarray(km.centroids, np.float32), idx[:, 0].astype(np.int64),
                        sim[:, 0].astype(np.float32), k, params)
