"""Clustering metrics on plain NumPy label arrays.

Nothing here knows about models: every function takes ``y_true: (N,) int`` labels and
``y_pred: (N,) int`` cluster ids and returns numbers.

Which clustering accuracy to trust?

- :func:`hungarian_accuracy` matches clusters to labels **one-to-one** (the Hungarian
  algorithm on the contingency matrix). With more clusters than classes the extra clusters
  count as wrong, so it cannot be inflated by choosing a large k. This is the number to trust.
- :func:`majority_vote_accuracy` maps every cluster to its most frequent label (many clusters
  may share a label). This is the metric of Ferrante et al. (2023). It **rises with k** and
  reaches 1.0 when every point is its own cluster, so always report it together with k.
- :func:`majority_class_floor` is what "always predict the biggest class" scores. Put it
  next to every accuracy: 0.74 on a dataset with a 0.74 floor means nothing was learned.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from sklearn.metrics import (
    adjusted_rand_score,
    normalized_mutual_info_score,
    silhouette_score,
)


def _as_1d(y: np.ndarray) -> np.ndarray:
    """NumPy view of ``y``; an (N, 1) column (MedMNIST stores labels so) becomes (N,)."""
    y = np.asarray(y)
    return y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y


def _check_labels(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return both arrays as 1-D NumPy arrays of equal, non-zero length (or raise ValueError)."""
    y_true, y_pred = _as_1d(y_true), _as_1d(y_pred)
    if y_true.ndim != 1 or y_pred.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shapes {y_true.shape} and {y_pred.shape}")
    if len(y_true) != len(y_pred):
        raise ValueError(f"y_true has {len(y_true)} entries but y_pred has {len(y_pred)}")
    if len(y_true) == 0:
        raise ValueError("cannot score empty label arrays")
    return y_true, y_pred


def contingency_matrix(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count how often each cluster meets each label.

    Args:
        y_true: (N,) true labels.
        y_pred: (N,) cluster ids.

    Returns:
        ``(counts, clusters, labels)`` where ``counts[i, j]`` is the number of points in cluster
        ``clusters[i]`` whose true label is ``labels[j]``; shape (n_clusters, n_labels).
    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    labels, true_idx = np.unique(y_true, return_inverse=True)
    clusters, pred_idx = np.unique(y_pred, return_inverse=True)
    counts = np.zeros((len(clusters), len(labels)), dtype=np.int64)
    np.add.at(counts, (pred_idx, true_idx), 1)
    return counts, clusters, labels


def hungarian_mapping(y_true: np.ndarray, y_pred: np.ndarray) -> dict[int, int]:
    """Best one-to-one mapping ``{cluster id: label}`` (Hungarian algorithm).

    The mapping maximises the number of points whose cluster is mapped to their own label.
    When there are more clusters than labels, the extra clusters are left out of the mapping
    (their points count as wrong); with fewer clusters, some labels are never predicted.

    Args:
        y_true: (N,) true labels.
        y_pred: (N,) cluster ids.
    """
    counts, clusters, labels = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return {int(clusters[r]): int(labels[c]) for r, c in zip(rows, cols)}


def hungarian_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy after the best one-to-one matching of clusters to labels, in [0, 1].

    Works for any number of clusters (rectangular contingency matrix); unmatched clusters count
    as wrong, so over-clustering is not rewarded. This is the standard deep-clustering accuracy
    (DEC, IDEC, VaDE) and the one to trust.

    Args:
        y_true: (N,) true labels.
        y_pred: (N,) cluster ids.

    Example:
        >>> hungarian_accuracy([0, 0, 1, 1], [5, 5, 3, 3])
        1.0
    """
    counts, _, _ = contingency_matrix(y_true, y_pred)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / counts.sum())


def majority_vote_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Accuracy when every cluster is mapped to its most frequent true label, in [0, 1].

    This is the metric used by Ferrante et al. (2023). Several clusters may map to the same
    label, so it **rises with the number of clusters K** and equals 1.0 when every point is its
    own cluster. It must therefore **always be reported together with K**; prefer
    :func:`hungarian_accuracy` for comparing methods.

    Args:
        y_true: (N,) true labels.
        y_pred: (N,) cluster ids.
    """
    counts, _, _ = contingency_matrix(y_true, y_pred)
    return float(counts.max(axis=1).sum() / counts.sum())


def majority_class_floor(y: np.ndarray) -> float:
    """Fraction of the most frequent class: the accuracy of always predicting it.

    Args:
        y: (N,) labels.

    Example:
        >>> majority_class_floor([0, 0, 0, 1])
        0.75
    """
    y = _as_1d(y)
    if y.ndim != 1 or len(y) == 0:
        raise ValueError(f"need a non-empty 1-D label array, got shape {y.shape}")
    _, counts = np.unique(y, return_counts=True)
    return float(counts.max() / counts.sum())


def clustering_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    z: np.ndarray | None = None,
    silhouette_max_points: int = 2000,
    seed: int = 0,
) -> dict[str, float]:
    """All clustering numbers of the evaluation protocol in one dict.

    Args:
        y_true: (N,) true labels.
        y_pred: (N,) cluster ids.
        z: optional (N, D) latents; when given, the silhouette score is added (computed on a
            seeded subsample of at most ``silhouette_max_points`` points for speed).
        silhouette_max_points: subsample size for the silhouette.
        seed: seed of that subsample.

    Returns:
        ``{"hungarian_acc", "majority_vote_acc", "n_clusters", "nmi", "ari", "floor"}`` and
        ``"silhouette"`` when ``z`` is given (NaN when it is undefined, e.g. one cluster).
        ``majority_vote_acc`` depends on ``n_clusters``: report them together.
    """
    y_true, y_pred = _check_labels(y_true, y_pred)
    out: dict[str, float] = {
        "hungarian_acc": hungarian_accuracy(y_true, y_pred),
        "majority_vote_acc": majority_vote_accuracy(y_true, y_pred),
        "n_clusters": int(len(np.unique(y_pred))),
        "nmi": float(normalized_mutual_info_score(y_true, y_pred)),
        "ari": float(adjusted_rand_score(y_true, y_pred)),
        "floor": majority_class_floor(y_true),
    }
    if z is not None:
        out["silhouette"] = silhouette(z, y_pred, max_points=silhouette_max_points, seed=seed)
    return out


def silhouette(z: np.ndarray, labels: np.ndarray, max_points: int = 2000, seed: int = 0) -> float:
    """Silhouette score in [-1, 1] on a seeded subsample of at most ``max_points`` points.

    The exact silhouette costs O(N^2); a 2000-point subsample is accurate to about 0.01.

    Args:
        z: (N, D) points.
        labels: (N,) cluster ids.

    Returns:
        The score, or NaN when the subsample has fewer than 2 clusters or every point is its
        own cluster (the silhouette is undefined there).
    """
    z = np.asarray(z, dtype=np.float64)
    labels = np.asarray(labels)
    if len(z) != len(labels):
        raise ValueError(f"z has {len(z)} rows but labels has {len(labels)} entries")
    if len(z) > max_points:
        idx = np.random.default_rng(seed).choice(len(z), size=max_points, replace=False)
        z, labels = z[idx], labels[idx]
    n_labels = len(np.unique(labels))
    if n_labels < 2 or n_labels > len(z) - 1:
        return float("nan")
    return float(silhouette_score(z, labels))
