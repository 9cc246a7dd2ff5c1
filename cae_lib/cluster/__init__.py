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

Modules: ``estimator`` (:class:`LatentClusterer`, :func:`cluster_latents`) and ``analysis``
(:func:`choose_k_curves`, :func:`subgroup_report`, :func:`majority_vote_curve`).
"""

from cae_lib.cluster.analysis import (
    choose_k_curves,
    majority_vote_curve,
    subgroup_report,
)
from cae_lib.cluster.estimator import (
    METHODS,
    PREPROCESSING,
    LatentClusterer,
    cluster_latents,
    nearest_center,
)

__all__ = [
    "METHODS",
    "PREPROCESSING",
    "LatentClusterer",
    "choose_k_curves",
    "cluster_latents",
    "majority_vote_curve",
    "nearest_center",
    "subgroup_report",
]
