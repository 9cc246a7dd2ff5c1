"""Spectral clustering on the k-nearest-neighbour graph of the codes, with a ``predict`` for new points.

Why neighbours: NT-Xent spreads the codes evenly over the unit sphere, so a class is a connected
region of it rather than a compact blob around a centre, which is what k-means assumes. A kNN probe
on the same codes shows that each code's neighbours usually share its label. Spectral clustering
uses exactly that: it builds the graph that joins every code to its ``n_neighbors`` nearest codes,
and cuts it where few edges cross (von Luxburg, "A tutorial on spectral clustering", 2007).

The clustering itself is scikit-learn's ``SpectralClustering(affinity="nearest_neighbors")``. It
cannot place new points, so :meth:`SpectralNeighbourClustering.predict` gives each new code the
cluster most of its ``n_neighbors`` nearest *training* codes belong to (ties go to the cluster of
the nearest of them).
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClusterMixin
from sklearn.cluster import SpectralClustering
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

#: The default neighbour count, 15: chosen on the validation splits only, by the rule of stage 2 of the
#: clusterer sweep (``benchmarks/sweep_neighbours.py``; results in ``benchmarks/results/sweep_neighbours.md``).
NEIGHBOURS = 15


class SpectralNeighbourClustering(ClusterMixin, BaseEstimator):
    """Spectral clustering of ``x: (N, D)`` on its kNN graph; new points join by a kNN vote.

    Args:
        k: number of clusters.
        n_neighbors: neighbours per point, for the graph and for the vote of :meth:`predict` (default
            :data:`NEIGHBOURS`).
        seed: seeds the eigen-solver and the label assignment.
        n_threads: CPU threads for fitting (see :class:`cae_lib.cluster.LatentClusterer`).

    Attributes (after ``fit``):
        labels_: (N,) cluster of each training point, in ``0 .. k-1``.
        centers_: (k, D) mean of each cluster's points (for plots of typical members).
    """

    def __init__(self, k: int, n_neighbors: int = NEIGHBOURS, seed: int = 0, n_threads: int | None = 1) -> None:
        self.k = k
        self.n_neighbors = n_neighbors
        self.seed = seed
        self.n_threads = n_threads

    def fit(self, x: np.ndarray, y: None = None) -> "SpectralNeighbourClustering":
        """Cluster ``x: (N, D)``; ``y`` is ignored (clustering never sees labels)."""
        x = np.asarray(x, dtype=np.float64)
        if self.n_neighbors < 1:
            raise ValueError(f"n_neighbors must be at least 1, got {self.n_neighbors}")
        neighbours = min(int(self.n_neighbors), len(x) - 1)
        model = SpectralClustering(n_clusters=int(self.k), affinity="nearest_neighbors", n_neighbors=neighbours,
                                   assign_labels="cluster_qr", random_state=self.seed)
        with threadpool_limits(limits=self.n_threads), warnings.catch_warnings():
            # a kNN graph of well-separated groups is disconnected; the embedding still separates them
            warnings.filterwarnings("ignore", message="Graph is not fully connected")
            self.labels_ = model.fit(x).labels_.astype(np.int64)
        self.model_ = model
        self.centers_ = np.stack([x[self.labels_ == c].mean(axis=0) if (self.labels_ == c).any() else np.full(x.shape[1], np.inf)
                                  for c in range(int(self.k))])
        self.index_ = NearestNeighbors(n_neighbors=neighbours).fit(x)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The cluster most of each new point's nearest training points are in. x: (M, D) -> (M,)."""
        if not hasattr(self, "index_"):
            raise RuntimeError("call fit(x) before predict(x)")
        with threadpool_limits(limits=self.n_threads):
            _, idx = self.index_.kneighbors(np.asarray(x, dtype=np.float64))
        votes = self.labels_[idx]  # (M, n_neighbors), nearest first
        counts = np.stack([(votes == c).sum(axis=1) for c in range(int(self.k))], axis=1).astype(np.float64)
        counts[np.arange(len(votes)), votes[:, 0]] += 0.5  # a tie goes to the nearest neighbour's cluster
        return counts.argmax(axis=1)

    def fit_predict(self, x: np.ndarray, y: None = None) -> np.ndarray:
        """``fit(x)`` and return the training labels ``(N,)``."""
        return self.fit(x).labels_
