"""Clustering figures: the matched confusion matrix, choosing k, the majority-vote pitfall, and neighbours against centroids."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure

from cae_lib.metrics import contingency_matrix, hungarian_accuracy, hungarian_mapping
from cae_lib.plots.axes import class_name, new_ax


def confusion_matrix_plot(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Heatmap of counts: rows are true labels, columns are clusters.

    Columns are reordered by the Hungarian mapping, so a perfect clustering is diagonal;
    clusters left unmatched (when k > number of classes) come last, marked with no label.
    """
    # Imported here, not at the top: seaborn brings pandas, about a second of import time that
    # ``from cae_lib import plots`` should not pay until a confusion matrix is drawn.
    import seaborn as sns

    counts, clusters, labels = contingency_matrix(y_true, y_pred)  # (clusters, labels)
    mapping = hungarian_mapping(y_true, y_pred)
    rank = {lab: i for i, lab in enumerate(labels)}
    matched_rank = [rank.get(mapping.get(int(c)), len(labels)) for c in clusters]  # unmatched: last
    order = sorted(range(len(clusters)), key=lambda i: (matched_rank[i], i))
    table = counts[order].T  # (labels, clusters in matched order)
    col_names = [
        f"c{clusters[i]}→{class_name(mapping[int(clusters[i])], class_names)}" if int(clusters[i]) in mapping
        else f"c{clusters[i]}"
        for i in order
    ]
    fig, ax = new_ax(ax, (max(4.5, 1.5 + 0.7 * len(clusters)), max(3.5, 1.5 + 0.5 * len(labels))))
    sns.heatmap(table, annot=table.size <= 400, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=col_names, yticklabels=[class_name(l, class_names) for l in labels])
    ax.set_xlabel("cluster (→ matched label)")
    ax.set_ylabel("true label")
    return fig


def elbow_silhouette(curves: Mapping[str, Sequence[float]], axes: Sequence[Axes] | None = None) -> Figure:
    """Two panels from :func:`cae_lib.cluster.choose_k_curves`: inertia (elbow) and silhouette.

    The best silhouette is marked; a clear elbow and a silhouette peak at the same k is good
    evidence for that k.
    """
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), layout="constrained")
    ks, sil = np.asarray(curves["k"]), np.asarray(curves["silhouette"], dtype=float)
    axes[0].plot(ks, curves["inertia"], marker="o")
    axes[0].set(title="Elbow: within-cluster sum of squares", xlabel="k", ylabel="inertia")
    axes[1].plot(ks, sil, marker="o", color="C1")
    if np.isfinite(sil).any():
        best = int(np.nanargmax(sil))
        axes[1].plot(ks[best], sil[best], marker="*", ms=14, color="C3", label=f"best k = {ks[best]}")
        axes[1].legend()
    axes[1].set(title="Silhouette (higher is better)", xlabel="k", ylabel="silhouette")
    return axes[0].figure


def majority_vote_pitfall(curve: Mapping[str, Any], ax: Axes | None = None) -> Figure:
    """Hungarian and majority-vote accuracy against k (from ``majority_vote_curve``), with the floor.

    Majority-vote accuracy keeps rising with k (it is 1.0 when every point is its own
    cluster); Hungarian accuracy does not. Compare methods only at the same k.
    """
    fig, ax = new_ax(ax, (6, 4))
    ax.plot(curve["k"], curve["hungarian_acc"], marker="o", label="Hungarian (one-to-one)")
    ax.plot(curve["k"], curve["majority_vote_acc"], marker="s", label="majority vote (rises with k)")
    if curve.get("floor") is not None:
        ax.axhline(curve["floor"], ls="--", color="gray", label=f"majority-class floor {curve['floor']:.3f}")
    if curve.get("n_classes") is not None:
        n = curve["n_classes"]
        ax.axvline(n, ls=":", color="black", label=f"k = number of classes ({n})")
    ax.set(xlabel="number of clusters k", ylabel="accuracy", title="The majority-vote pitfall")
    ax.legend(fontsize=8)
    return fig


def neighbours_and_centroids(
    x2d: np.ndarray,
    y: np.ndarray,
    partitions: Mapping[str, np.ndarray],
    neighbours: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    max_edges: int = 1500,
    seed: int = 0,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """Why neighbours can beat centroids: the true labels with the kNN graph, then each clustering.

    Args:
        x2d: (N, 2) the codes drawn in 2-D (e.g. by :func:`cae_lib.plots.project_2d`).
        y: (N,) true labels (only to colour the first panel and to score the others).
        partitions: ``{title: (N,) cluster ids}``, one panel each (e.g. k-means, spectral).
        neighbours: (N, n) each code's nearest codes, found in the full code space (e.g. by
            :func:`cae_lib.cluster.scan.mine_neighbours`); their edges are drawn in the first panel,
            grey where both ends share a label and red where they do not (at most ``max_edges``, a
            seeded sample), and the share of same-label edges is in its title.

    Each clustering panel's title gives its Hungarian accuracy against ``y``; a cluster is drawn in
    the colour of the label it is matched to (grey when unmatched), so the panels compare at a glance.
    """
    y = np.asarray(y).reshape(-1)
    n_panels = 1 + len(partitions)
    if axes is None:
        fig, axes = plt.subplots(1, n_panels, figsize=(3.6 * n_panels, 3.6), layout="constrained", sharex=True, sharey=True)
    axes = list(np.atleast_1d(axes))
    fig = axes[0].figure
    title = "true labels"
    if neighbours is not None:
        rows = np.repeat(np.arange(len(neighbours)), neighbours.shape[1])
        cols = neighbours.reshape(-1)
        same = y[rows] == y[cols]
        title += f"\n{same.mean():.0%} of the kNN edges join one label"
        pick = np.random.default_rng(seed).permutation(len(rows))[:max_edges]
        for keep, colour, alpha in ((same[pick], "0.6", 0.25), (~same[pick], "C3", 0.5)):
            i, j = rows[pick][keep], cols[pick][keep]
            segments = np.stack([x2d[i], x2d[j]], axis=1)  # (E, 2 ends, 2 coordinates)
            axes[0].add_collection(LineCollection(segments, colors=colour, linewidths=0.5, alpha=alpha, zorder=1))
    for c in np.unique(y):
        axes[0].scatter(*x2d[y == c].T, s=6, zorder=2, label=class_name(c, class_names))
    axes[0].set_title(title, fontsize=9)
    axes[0].legend(fontsize=7, markerscale=2)
    for ax, (name, labels) in zip(axes[1:], partitions.items()):
        labels = np.asarray(labels).reshape(-1)
        mapping = hungarian_mapping(y, labels)  # a cluster takes the colour of the label it is matched to
        classes = list(np.unique(y))
        for c in np.unique(labels):
            colour = f"C{classes.index(mapping[int(c)])}" if int(c) in mapping else "0.5"
            ax.scatter(*x2d[labels == c].T, s=6, color=colour, label=f"cluster {c}")
        ax.set_title(f"{name}\nHungarian acc {hungarian_accuracy(y, labels):.3f}", fontsize=9)
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    return fig
