"""Improved precision and recall of generative models (Kynkäänniemi et al. 2019), on feature vectors.

A set's manifold is the union of balls centred at its vectors, each with the radius to its k-th nearest
neighbour within the set (k = 3 in the paper). Precision: the share of generated vectors inside the real
manifold (how many samples look real); recall: the share of real vectors inside the generated manifold
(how much of the real variety the generator covers).
"""

from __future__ import annotations

import numpy as np

K_DEFAULT = 3


def _sq_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared Euclidean distances [len(a), len(b)] (float64, clipped at 0)."""
    d = (a * a).sum(1)[:, None] + (b * b).sum(1)[None, :] - 2.0 * a @ b.T
    return np.maximum(d, 0.0)


def knn_radii(x: np.ndarray, k: int = K_DEFAULT, block: int = 1024) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row."""
    x = np.asarray(x, np.float64)
    if not 1 <= k < len(x):
        raise ValueError(f"k must be in [1, {len(x) - 1}] for {len(x)} vectors, got {k}")
    out = np.empty(len(x))
    for i in range(0, len(x), block):
        d = _sq_distances(x[i:i + block], x)
        out[i:i + block] = np.sqrt(np.partition(d, k, axis=1)[:, k])  # column 0 of the sorted row is the point itself
    return out


def coverage(manifold: np.ndarray, radii: np.ndarray, query: np.ndarray, block: int = 1024) -> float:
    """Share of query rows inside the manifold: within radii[j] of some manifold row j."""
    manifold, query = np.asarray(manifold, np.float64), np.asarray(query, np.float64)
    inside = 0
    for i in range(0, len(query), block):
        d = _sq_distances(query[i:i + block], manifold)
        inside += int((d <= radii[None, :] ** 2).any(1).sum())
    return inside / max(len(query), 1)


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = K_DEFAULT) -> dict[str, float]:
    """{'precision', 'recall'} of `fake` against `real` feature vectors ([N, D] each)."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be [N, D] with the same D, got {real.shape} and {fake.shape}")
    return {"precision": coverage(real, knn_radii(real, k), fake),
            "recall": coverage(fake, knn_radii(fake, k), real)}


__all__ = ["K_DEFAULT", "knn_radii", "coverage", "precision_recall"]
