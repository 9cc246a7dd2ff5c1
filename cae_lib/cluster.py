"""Clustering latent codes: k-means, Gaussian mixtures and agglomerative clustering.

Everything works on a NumPy array of latents ``z: (N, D)``, so the same code clusters a CAE,
a VAE, a supervised network's features or raw pixels. :class:`LatentClusterer` has the
scikit-learn estimator API (``fit`` / ``predict`` / ``fit_predict``, as in ClustPy), so its
output composes with :mod:`cae_lib.metrics` and any sklearn tool.

Typical use::

    labels = cluster_latents(z, k=2, method="kmeans", preprocess="l2")
    print(clustering_metrics(y, labels))            # from cae_lib.metrics

    curves = choose_k_curves(z)                      # elbow + silhouette, to pick k
    report = subgroup_report(z, y, k=10)             # over-clustering: subgroups of each class
"""

from __future__ import annotations

import warnings
from typing import Iterable

import numpy as np
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from cae_lib.metrics import hungarian_accuracy, majority_class_floor, majority_vote_accuracy, silhouette

METHODS = ("kmeans", "gmm", "agglomerative")
PREPROCESSING = (None, "standardize", "pca", "l2")


def _check_z(z: np.ndarray) -> np.ndarray:
    """Return ``z`` as a finite (N, D) float64 array, or raise a ValueError that says what is wrong."""
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"z must be a 2-D array (N, D), got shape {z.shape}; flatten images first")
    if not np.all(np.isfinite(z)):
        bad = int((~np.isfinite(z).all(axis=1)).sum())
        raise ValueError(
            f"z contains NaN or inf in {bad} of {len(z)} rows; check the encoder "
            "(a diverged training run produces NaN latents) or drop those rows"
        )
    return z


def _check_k(k: int, n_samples: int) -> int:
    if not isinstance(k, (int, np.integer)) or isinstance(k, bool):
        raise ValueError(f"k must be an integer, got {k!r}")
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    if k > n_samples:
        raise ValueError(f"k={k} is larger than the number of samples ({n_samples}); use a smaller k")
    return int(k)


def _check_y(y: np.ndarray, n: int) -> np.ndarray:
    """Labels as a 1-D array of length n; an (N, 1) column (MedMNIST style) is flattened."""
    y = np.asarray(y)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match z, got {y.shape}")
    return y


class LatentClusterer:
    """Cluster latents with a scikit-learn style API: ``fit(z)``, ``predict(z)``, ``fit_predict(z)``.

    Args:
        k: number of clusters (1 <= k <= N).
        method: ``"kmeans"`` (default), ``"gmm"`` (Gaussian mixture) or ``"agglomerative"``
            (Ward linkage; memory grows as N^2, keep N below about 20 000).
        preprocess: applied to ``z`` before clustering and fitted on the ``fit`` data:
            ``None``; ``"standardize"`` (zero mean, unit variance per dimension);
            ``"pca"`` (keep ``pca_dim`` components, default ``min(50, D)``);
            ``"l2"`` (unit-norm rows: cosine geometry, natural for contrastive latents).
        pca_dim: number of PCA components when ``preprocess="pca"``.
        seed: seeds k-means and the GMM, so results are reproducible.
        n_init: restarts; the best run is kept. Default 10 for k-means, 3 for the GMM.
        covariance_type: GMM covariance, ``"full"`` (default) or ``"diag"``. If a full fit fails
            (singular covariance, common with few points per cluster) it falls back to ``"diag"``
            with a warning.
        n_threads: CPU threads (BLAS and OpenMP) for fitting; ``None`` lets the libraries decide.
            The default 1 is deliberate: on shared or quota-limited machines (Binder, CI, a busy
            laptop) threads mostly wait on each other, and we measured k-means and the GMM
            8-50x *slower* with threads than without. Try ``None`` on a big idle machine.

    Attributes (after ``fit``):
        labels_: (N,) cluster id of each training point, in ``0 .. k-1``.
        centers_: (k, D') cluster centres in the preprocessed space (D' = D, or ``pca_dim``).
        model_: the fitted sklearn estimator.
    """

    def __init__(
        self,
        k: int,
        method: str = "kmeans",
        preprocess: str | None = None,
        pca_dim: int | None = None,
        seed: int = 0,
        n_init: int | None = None,
        covariance_type: str = "full",
        n_threads: int | None = 1,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"unknown clustering method {method!r}; valid methods: {', '.join(METHODS)}")
        if preprocess not in PREPROCESSING:
            raise ValueError(f"unknown preprocess {preprocess!r}; valid options: {PREPROCESSING}")
        if covariance_type not in ("full", "diag"):
            raise ValueError(f"covariance_type must be 'full' or 'diag', got {covariance_type!r}")
        self.k = k
        self.method = method
        self.preprocess = preprocess
        self.pca_dim = pca_dim
        self.seed = seed
        self.n_init = n_init
        self.covariance_type = covariance_type
        self.n_threads = n_threads

    # -- preprocessing ------------------------------------------------------------------
    def _fit_transform(self, z: np.ndarray) -> np.ndarray:
        self.scaler_ = None
        if self.preprocess == "standardize":
            self.scaler_ = StandardScaler().fit(z)
        elif self.preprocess == "pca":
            dim = min(self.pca_dim or 50, z.shape[0], z.shape[1])
            self.scaler_ = PCA(n_components=dim, random_state=self.seed).fit(z)
        return self.transform(z)

    def transform(self, z: np.ndarray) -> np.ndarray:
        """Apply the fitted preprocessing. z: (N, D) -> (N, D')."""
        z = _check_z(z)
        if self.preprocess == "l2":
            return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        if getattr(self, "scaler_", None) is not None:
            return self.scaler_.transform(z)
        return z

    # -- fitting ------------------------------------------------------------------------
    def fit(self, z: np.ndarray) -> "LatentClusterer":
        """Fit the preprocessing and the clustering on ``z: (N, D)``; returns ``self``."""
        z = _check_z(z)
        k = _check_k(self.k, len(z))
        x = self._fit_transform(z)
        with threadpool_limits(limits=self.n_threads):  # see n_threads in the class docstring
            self._fit_model(x, k)
        return self

    def _fit_model(self, x: np.ndarray, k: int) -> None:
        if self.method == "kmeans":
            self.model_ = KMeans(k, n_init=self.n_init or 10, random_state=self.seed).fit(x)
            self.labels_ = self.model_.labels_
            self.centers_ = self.model_.cluster_centers_
        elif self.method == "gmm":
            self.model_ = self._fit_gmm(x, k)
            self.labels_ = self.model_.predict(x)
            self.centers_ = self.model_.means_
        else:  # agglomerative: no centres of its own, so use the cluster means
            self.model_ = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(x)
            self.labels_ = self.model_.labels_
            self.centers_ = np.stack([x[self.labels_ == c].mean(axis=0) for c in range(k)])

    def _fit_gmm(self, x: np.ndarray, k: int) -> GaussianMixture:
        def gmm(cov: str) -> GaussianMixture:
            return GaussianMixture(k, covariance_type=cov, n_init=self.n_init or 3, random_state=self.seed)

        if self.covariance_type == "diag":
            return gmm("diag").fit(x)
        try:
            return gmm("full").fit(x)
        except ValueError as err:  # ill-defined covariance: too few points per dimension
            warnings.warn(f"full-covariance GMM failed ({err}); falling back to covariance_type='diag'")
            return gmm("diag").fit(x)

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Cluster ids of new points ``z: (M, D)`` -> (M,).

        k-means: nearest centre; GMM: most probable component; agglomerative: nearest cluster
        mean (agglomerative clustering itself cannot place new points).
        """
        if not hasattr(self, "model_"):
            raise RuntimeError("call fit(z) before predict(z)")
        x = self.transform(z)
        if self.method == "agglomerative":
            return nearest_center(x, self.centers_)
        with threadpool_limits(limits=self.n_threads):
            return self.model_.predict(x)

    def fit_predict(self, z: np.ndarray) -> np.ndarray:
        """``fit(z)`` and return the training labels ``(N,)``."""
        return self.fit(z).labels_


def nearest_center(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index of the nearest centre (Euclidean) for each row. x: (N, D), centers: (k, D) -> (N,)."""
    # |x - c|^2 = |x|^2 - 2 x.c + |c|^2; |x|^2 is the same for every centre, so drop it.
    d2 = -2 * x @ centers.T + (centers**2).sum(axis=1)
    return d2.argmin(axis=1)


def cluster_latents(
    z: np.ndarray,
    k: int,
    method: str = "kmeans",
    preprocess: str | None = None,
    pca_dim: int | None = None,
    seed: int = 0,
    n_threads: int | None = 1,
) -> np.ndarray:
    """Cluster ``z: (N, D)`` into ``k`` groups; returns (N,) int labels in ``0 .. k-1``.

    A one-line wrapper around :class:`LatentClusterer` (see it for the options).
    """
    model = LatentClusterer(k, method, preprocess, pca_dim=pca_dim, seed=seed, n_threads=n_threads)
    return model.fit_predict(z)


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

    Returns:
        One dict per cluster id ``0 .. k-1`` with ``cluster``, ``size``, ``majority_label``,
        ``purity`` (fraction of the cluster carrying its majority label, in [0, 1]),
        ``label_counts`` ({label: count}), ``typical_indices`` ((m,) indices into ``z``,
        nearest first, m <= n_typical) and, if ``images`` is given, ``typical_images``.
    """
    model = LatentClusterer(k, method, preprocess, seed=seed).fit(z)
    x = model.transform(z)
    dist = np.linalg.norm(x - model.centers_[model.labels_], axis=1)
    y = None if y is None else _check_y(y, len(x))
    report = []
    for c in range(model.k):
        members = np.flatnonzero(model.labels_ == c)
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
