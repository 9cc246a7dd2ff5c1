"""The clustering estimator: :class:`LatentClusterer` (scikit-learn API) and :func:`cluster_latents`."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import AgglomerativeClustering, KMeans
from sklearn.decomposition import PCA
from sklearn.mixture import GaussianMixture
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from cae_lib.cluster.spectral import NEIGHBOURS, SpectralNeighbourClustering

METHODS = ("kmeans", "gmm", "agglomerative", "spectral", "scan")
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


class LatentClusterer(ClusterMixin, BaseEstimator):
    """Cluster latents with the scikit-learn estimator API: ``fit(z)``, ``predict(z)``, ``fit_predict(z)``.

    A real scikit-learn estimator: ``__init__`` only stores the parameters and ``fit`` checks them,
    so ``sklearn.base.clone``, ``get_params`` / ``set_params`` and pipelines such as
    ``make_pipeline(StandardScaler(), LatentClusterer(2))`` work.

    Args:
        k: number of clusters (1 <= k <= N).
        method: ``"kmeans"`` (default), ``"gmm"`` (Gaussian mixture), ``"agglomerative"``
            (Ward linkage; memory grows as N^2, keep N below about 20 000), or the neighbour-based
            ``"spectral"`` (:class:`~cae_lib.cluster.spectral.SpectralNeighbourClustering`, on the
            kNN graph of the codes) and ``"scan"`` (:class:`~cae_lib.cluster.scan.SCANClustering`).
        n_neighbors: neighbours per code for ``"spectral"`` (graph and vote) and ``"scan"`` (mined
            neighbours); ``None``: 15 for spectral (:data:`~cae_lib.cluster.spectral.NEIGHBOURS`), 20 for SCAN.
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
        n_threads: CPU threads (BLAS, OpenMP, and torch's for SCAN) for fitting; ``None`` lets the libraries decide.
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
        n_neighbors: int | None = None,
    ) -> None:
        self.k = k
        self.method = method
        self.preprocess = preprocess
        self.pca_dim = pca_dim
        self.seed = seed
        self.n_init = n_init
        self.covariance_type = covariance_type
        self.n_threads = n_threads
        self.n_neighbors = n_neighbors

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
    def _check_params(self) -> None:
        """Validate the parameters (scikit-learn checks them in ``fit``, not in ``__init__``)."""
        if self.method not in METHODS:
            raise ValueError(f"unknown clustering method {self.method!r}; valid methods: {', '.join(METHODS)}")
        if self.preprocess not in PREPROCESSING:
            raise ValueError(f"unknown preprocess {self.preprocess!r}; valid options: {PREPROCESSING}")
        if self.covariance_type not in ("full", "diag"):
            raise ValueError(f"covariance_type must be 'full' or 'diag', got {self.covariance_type!r}")

    def fit(self, z: np.ndarray, y: None = None) -> "LatentClusterer":
        """Fit the preprocessing and the clustering on ``z: (N, D)``; returns ``self``.

        ``y`` is ignored (present for the scikit-learn API: clustering never sees labels).
        """
        self._check_params()
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
        elif self.method == "agglomerative":  # no centres of its own, so use the cluster means
            self.model_ = AgglomerativeClustering(n_clusters=k, linkage="ward").fit(x)
            self.labels_ = self.model_.labels_
            self.centers_ = np.stack([x[self.labels_ == c].mean(axis=0) for c in range(k)])
        else:  # the neighbour-based clusterers: their own estimators, centres = cluster means
            if self.method == "spectral":
                self.model_ = SpectralNeighbourClustering(k, self.n_neighbors or NEIGHBOURS, seed=self.seed, n_threads=self.n_threads)
            else:
                from cae_lib.cluster.scan import (
                    SCANClustering,  # here: only a SCAN run needs its training loop
                )

                self.model_ = SCANClustering(k, self.n_neighbors or 20, seed=self.seed, n_threads=self.n_threads)
            self.labels_ = self.model_.fit(x).labels_
            self.centers_ = self.model_.centers_

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
        mean (agglomerative clustering itself cannot place new points); spectral: the cluster of
        most of the point's nearest training codes; SCAN: the head's most probable cluster.
        """
        if not hasattr(self, "model_"):
            raise RuntimeError("call fit(z) before predict(z)")
        x = self.transform(z)
        if self.method == "agglomerative":
            return nearest_center(x, self.centers_)
        with threadpool_limits(limits=self.n_threads):
            return self.model_.predict(x)

    def fit_predict(self, z: np.ndarray, y: None = None) -> np.ndarray:
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
