"""Small inputs shared by the clusterbuild tests."""

from __future__ import annotations

import numpy as np


def blobs(n_per: int = 40, k: int = 4, d: int = 16, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`k` well-separated Gaussian blobs of `n_per` points in `d` dimensions, and each point's blob."""
    rng = np.random.default_rng(seed)
    centres = np.eye(d, dtype=np.float32)[:k] * 5
    x = np.concatenate([c + rng.normal(0, 0.3, (n_per, d)).astype(np.float32) for c in centres])
    return x, np.repeat(np.arange(k), n_per)
