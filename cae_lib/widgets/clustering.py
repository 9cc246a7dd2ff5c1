"""Explorer 3, clustering: choose k and the method, see the metrics, the confusion matrix and typical members;
and :func:`neighbours_figure`, why neighbour-based clustering can beat centroids on the same codes.

Clustering refits a model, so this explorer renders only when **Run** is pressed. Its metrics table
(:func:`clustering_table`) puts the majority-class floor beside every number and labels the
majority-vote accuracy with its K, which it rises with.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown
from matplotlib.figure import Figure

from cae_lib import plots
from cae_lib.batches import images_of
from cae_lib.cluster import LatentClusterer
from cae_lib.cluster.scan import mine_neighbours
from cae_lib.cluster.spectral import NEIGHBOURS
from cae_lib.evaluate import CLUSTERER_NAMES
from cae_lib.metrics import clustering_metrics
from cae_lib.plots.axes import class_name
from cae_lib.widgets.common import Explorer, dropdown, slider


def clustering_table(rows: Mapping[str, Mapping[str, Any]]) -> str:
    """A Markdown table of clustering metrics, one row per method, the majority floor beside them.

    Args:
        rows: ``{row name: clustering_metrics(...) dict}``; each needs ``hungarian_acc``, ``nmi``,
            ``ari``, ``majority_vote_acc``, ``n_clusters`` and ``floor`` (as returned by
            :func:`cae_lib.metrics.clustering_metrics` or :func:`render_clustering`).

    The majority-vote accuracy is labelled with its K: it rises with K, so it only compares
    methods at the same K. Hungarian accuracy is the number to trust.
    """
    lines = [
        "| method | k | Hungarian acc | NMI | ARI | majority-vote acc (at that K) | majority-class floor |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, m in rows.items():
        k = int(m.get("k", m["n_clusters"]))
        lines.append(
            f"| {name} | {k} | **{m['hungarian_acc']:.3f}** | {m['nmi']:.3f} | {m['ari']:.3f} "
            f"| {m['majority_vote_acc']:.3f} (K = {k}) | {m['floor']:.3f} |"
        )
    return "\n".join(lines)


def render_clustering(
    z: np.ndarray,
    y: np.ndarray,
    k: int,
    method: str = "kmeans",
    preprocess: str | None = None,
    z_fit: np.ndarray | None = None,
    images: Any = None,
    class_names: Sequence[str] | None = None,
    seed: int = 0,
    n_typical: int = 6,
    max_points: int = 1000,
) -> tuple[Figure, dict[str, Any]]:
    """Cluster ``z`` into ``k`` groups and show the result: map, confusion matrix, typical members.

    Args:
        z: (N, D) codes to cluster and score; y: (N,) true labels (only used to score).
        k: number of clusters; method: one of :data:`cae_lib.cluster.METHODS` (``"kmeans"``, ``"gmm"``,
            ``"agglomerative"``, ``"spectral"``, ``"scan"``).
        preprocess: ``None``, ``"l2"``, ``"standardize"`` or ``"pca"`` (see :class:`LatentClusterer`).
        z_fit: if given, the clustering is fitted on these codes (e.g. the train split) and
            applied to ``z`` (e.g. the test split), as in the evaluation protocol; otherwise
            it is fitted on ``z`` itself.
        images: optional (N, ...) images of ``z``; adds a row of the ``n_typical`` members
            nearest to each cluster centre.

    Returns:
        ``(figure, metrics)``: metrics from :func:`cae_lib.metrics.clustering_metrics`
        (``hungarian_acc``, ``majority_vote_acc`` at this K, ``nmi``, ``ari``, ``floor``,
        ``silhouette``) plus ``k``, ``method`` and ``preprocess``.
    """
    y = np.asarray(y).reshape(-1)
    clusterer = LatentClusterer(int(k), method, preprocess, seed=seed).fit(z if z_fit is None else z_fit)
    pred = clusterer.labels_ if z_fit is None else clusterer.predict(z)
    x = clusterer.transform(z)
    metrics: dict[str, Any] = clustering_metrics(y, pred, z=x, seed=seed)
    metrics.update(k=int(k), method=method, preprocess=preprocess or "none")

    mosaic = [["map", "confusion"]] + ([["typical", "typical"]] if images is not None else [])
    fig, ax = plt.subplot_mosaic(mosaic, figsize=(11, 4.5 + (0.55 * min(k, 20) + 0.5 if images is not None else 0)),
                                 layout="constrained", height_ratios=[4.5, 0.55 * min(k, 20) + 0.5] if images is not None else None)
    z2d, idx = plots.project_2d(x, "pca", seed=seed, max_points=max_points)
    plots.latent_map(z2d, pred[idx], f"PCA of the codes, coloured by {method} cluster", ax=ax["map"])
    plots.confusion_matrix_plot(y, pred, class_names=class_names, ax=ax["confusion"])
    ax["confusion"].set_title("true label x cluster (columns matched one-to-one)")
    if images is not None:
        dist = np.linalg.norm(x - clusterer.centers_[np.clip(pred, 0, len(clusterer.centers_) - 1)], axis=1)
        shown = [c for c in range(int(k)) if (pred == c).any()][:20]
        typical = [np.flatnonzero(pred == c)[np.argsort(dist[pred == c], kind="stable")[:n_typical]] for c in shown]
        titles = []
        for c, members in zip(shown, typical):
            lab, counts = np.unique(y[pred == c], return_counts=True)
            titles.append(f"c{c} (n={int((pred == c).sum())})\n{counts.max() / counts.sum():.0%} {class_name(lab[counts.argmax()], class_names)}")
        plots.cluster_montages(images_of(images), shown, typical, titles, ax=ax["typical"])
        ax["typical"].set_title(f"the {n_typical} members nearest to each cluster centre (purity and majority label on the left)", fontsize=9)
    fig.suptitle(
        f"{method}, k = {k}: Hungarian acc {metrics['hungarian_acc']:.3f} | NMI {metrics['nmi']:.3f} | ARI {metrics['ari']:.3f} "
        f"| majority-vote acc (K = {k}) {metrics['majority_vote_acc']:.3f} | floor {metrics['floor']:.3f}", fontsize=10)
    return fig, metrics


def cluster_explorer(
    z: np.ndarray,
    y: np.ndarray,
    images: Any = None,
    class_names: Sequence[str] | None = None,
    z_fit: np.ndarray | None = None,
    preprocess: str | None = None,
    k_max: int = 20,
    seed: int = 0,
) -> Explorer:
    """A slider for k and a dropdown for the method, over :func:`render_clustering` (press Run)."""
    n_classes = len(np.unique(np.asarray(y)))
    controls = {
        "k": slider(widgets.IntSlider, n_classes, 2, max(k_max, n_classes), 1, "k (clusters)"),
        "method": dropdown([("k-means", "kmeans"), ("Gaussian mixture", "gmm"), ("agglomerative (Ward)", "agglomerative"),
                            ("spectral (kNN graph)", "spectral"), ("SCAN", "scan")], "kmeans", "method"),
    }

    def render(k: int, method: str) -> tuple[Figure, dict[str, Any]]:
        return render_clustering(z, y, k, method, preprocess, z_fit, images, class_names, seed)

    return Explorer(render, controls, manual=True,
                    show_extra=lambda m: Markdown(clustering_table({m["method"]: m})),
                    title=f"Clustering: choose k and the method, then press Run (the data has {n_classes} classes)")


def neighbours_figure(
    z: np.ndarray,
    y: np.ndarray,
    z_fit: np.ndarray,
    methods: Sequence[str] = ("kmeans", "spectral", "scan"),
    preprocess: str | None = None,
    class_names: Sequence[str] | None = None,
    n_neighbors: int = NEIGHBOURS,
    seed: int = 0,
    max_points: int = 1000,
) -> Figure:
    """Why neighbours can beat centroids, on real codes: :func:`cae_lib.plots.neighbours_and_centroids`.

    Each of ``methods`` is fitted on ``z_fit`` (e.g. the train codes) and assigns ``z`` (e.g. the
    test codes, (N, D), labels ``y``); the first panel shows ``z``'s true labels and the edges joining
    each code to its ``n_neighbors`` nearest codes, found in the full (preprocessed) code space. At
    most ``max_points`` codes are drawn (a seeded sample), all of them are scored.
    """
    y = np.asarray(y).reshape(-1)
    partitions = {}
    for method in methods:
        clusterer = LatentClusterer(len(np.unique(y)), method, preprocess, seed=seed).fit(z_fit)
        partitions[CLUSTERER_NAMES.get(method, method)] = clusterer.predict(z)
    x = clusterer.transform(z)  # the same preprocessing for every method
    x2d, idx = plots.project_2d(x, "pca", seed=seed, max_points=max_points)
    return plots.neighbours_and_centroids(x2d, y[idx], {name: labels[idx] for name, labels in partitions.items()},
                                          neighbours=mine_neighbours(x[idx], n_neighbors), class_names=class_names, seed=seed)
