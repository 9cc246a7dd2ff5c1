"""Looking at a clustering: choosing k, over-clustering into subgroups, and the majority-vote pitfall."""

from __future__ import annotations

from typing import Iterable

import numpy as np

from cae_lib.cluster.estimator import LatentClusterer, cluster_latents
from cae_lib.metrics import (
    _as_1d,
    hungarian_accuracy,
    majority_class_floor,
    majority_vote_accuracy,
    silhouette,
)


def _check_y(y: np.ndarray, n: int) -> np.ndarray:
    """Labels as a 1-D array of length n; an (N, 1) column (MedMNIST style) is flattened."""
    y = _as_1d(y)
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match z, got {y.shape}")
    return y


def choose_k_curves(
    z: np.ndarray,
    k_range: Iterable[int] = range(2, 11),
    method: str = "kmeans",
    preprocess: str | None = None,
    seed: int = 0,
    silhouette_max_points: int = 2000,
) -> dict[str, list]:
    """Elbow and silhouette curves to help choose k.

    Args:
        z: (N, D) latents.
        k_range: the k values to try.
        silhouette_max_points: the silhouette uses a seeded subsample of at most this many points.

    Returns:
        ``{"k": [...], "inertia": [...], "silhouette": [...]}``. Inertia is the within-cluster sum
        of squared distances to the cluster centres (in the preprocessed space); look for the
        "elbow" where it stops falling fast. Silhouette is in [-1, 1]; higher is better.
    """
    out: dict[str, list] = {"k": [], "inertia": [], "silhouette": []}
    for k in k_range:
        model = LatentClusterer(k, method, preprocess, seed=seed).fit(z)
        x = model.transform(z)
        inertia = float(((x - model.centers_[model.labels_]) ** 2).sum())
        out["k"].append(int(k))
        out["inertia"].append(inertia)
        out["silhouette"].append(silhouette(x, model.labels_, max_points=silhouette_max_points, seed=seed))
    return out


def subgroup_report(
    z: np.ndarray,
    y: np.ndarray | None,
    k: int,
    images: np.ndarray | None = None,
    n_typical: int = 8,
    method: str = "kmeans",
    preprocess: str | None = None,
    seed: int = 0,
    clusters: np.ndarray | None = None,
) -> list[dict]:
    """Describe each cluster of an over-clustering (k larger than the number of classes).

    Over-clustering splits each class into subgroups, e.g. patient strata within "pneumonia".
    For every cluster the report gives its size, its label make-up and its most typical members
    (the points nearest to its centre), ready for :func:`cae_lib.plots.subgroup_montages`.

    Args:
        z: (N, D) latents.
        y: (N,) labels, or None when there are none (label fields are then None).
        k: number of clusters.
        images: optional (N, ...) images; when given, each entry carries its typical images.
        n_typical: how many typical members to list per cluster.
        clusters: (N,) cluster ids in ``0 .. k-1`` assigned elsewhere, e.g. the evaluation
            protocol's (k-means fitted on the train codes): they are described as they are and
            nothing is re-clustered; a cluster's typical members are those nearest to its mean.
            ``None`` (default) clusters ``z`` itself with ``method``.

    Returns:
        One dict per cluster id ``0 .. k-1`` with ``cluster``, ``size``, ``majority_label``,
        ``purity`` (fraction of the cluster carrying its majority label, in [0, 1]),
        ``label_counts`` ({label: count}), ``typical_indices`` ((m,) indices into ``z``,
        nearest first, m <= n_typical) and, if ``images`` is given, ``typical_images``.
    """
    if clusters is None:
        model = LatentClusterer(k, method, preprocess, seed=seed).fit(z)
        x, assigned, centers = model.transform(z), model.labels_, model.centers_
    else:
        assigned = np.asarray(clusters).astype(np.int64)
        if assigned.shape != (len(z),) or (len(assigned) and (assigned.min() < 0 or assigned.max() >= k)):
            raise ValueError(f"clusters must hold one id in 0 .. {k - 1} for each of the {len(z)} codes; got shape {assigned.shape}")
        x = LatentClusterer(k, method, preprocess, seed=seed)._fit_transform(np.asarray(z))  # the same preprocessing, no clustering
        centers = np.stack([x[assigned == c].mean(axis=0) if (assigned == c).any() else np.zeros(x.shape[1]) for c in range(k)])
    dist = np.linalg.norm(x - centers[assigned], axis=1)
    y = None if y is None else _check_y(y, len(x))
    report = []
    for c in range(k):
        members = np.flatnonzero(assigned == c)
        typical = members[np.argsort(dist[members], kind="stable")[:n_typical]]
        entry: dict = {"cluster": c, "size": int(len(members)), "typical_indices": typical}
        entry.update(_label_summary(None if y is None else y[members]))
        if images is not None:
            entry["typical_images"] = np.asarray(images)[typical]
        report.append(entry)
    return report


def _label_summary(y: np.ndarray | None) -> dict:
    """Majority label, purity and counts of the labels of one cluster."""
    if y is None:
        return {"majority_label": None, "purity": None, "label_counts": None}
    if len(y) == 0:  # an empty cluster (possible with a GMM)
        return {"majority_label": None, "purity": float("nan"), "label_counts": {}}
    labels, counts = np.unique(y, return_counts=True)
    return {
        "majority_label": int(labels[counts.argmax()]),
        "purity": float(counts.max() / counts.sum()),
        "label_counts": {int(l): int(n) for l, n in zip(labels, counts)},
    }


def majority_vote_curve(
    z: np.ndarray,
    y: np.ndarray,
    k_range: Iterable[int] = range(2, 21),
    method: str = "kmeans",
    preprocess: str | None = None,
    seed: int = 0,
) -> dict[str, list | float | int]:
    """Hungarian and majority-vote accuracy for each k: the majority-vote pitfall, live.

    Majority-vote accuracy climbs towards 1 as k grows while Hungarian accuracy falls once k
    exceeds the number of classes. Plot with :func:`cae_lib.plots.majority_vote_pitfall`.

    Returns:
        ``{"k": [...], "hungarian_acc": [...], "majority_vote_acc": [...], "floor": float,
        "n_classes": int}``.
    """
    y = _check_y(y, len(z))
    out: dict = {"k": [], "hungarian_acc": [], "majority_vote_acc": []}
    for k in k_range:
        labels = cluster_latents(z, k, method, preprocess, seed=seed)
        out["k"].append(int(k))
        out["hungarian_acc"].append(hungarian_accuracy(y, labels))
        out["majority_vote_acc"].append(majority_vote_accuracy(y, labels))
    out["floor"] = majority_class_floor(y)
    out["n_classes"] = int(len(np.unique(y)))
    return out
