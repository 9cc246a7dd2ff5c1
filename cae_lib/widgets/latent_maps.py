"""Explorer 2, latent maps: the same test images, projected to 2-D, as each model encodes them."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure

from cae_lib import plots
from cae_lib.cluster import cluster_latents
from cae_lib.metrics import hungarian_accuracy, majority_class_floor
from cae_lib.widgets.common import Explorer, dropdown


def render_latent_map(
    z_by_model: Mapping[str, np.ndarray] | np.ndarray,
    labels: np.ndarray,
    projection: str = "pca",
    color_by: str = "label",
    models: Sequence[str] | None = None,
    class_names: Sequence[str] | None = None,
    k: int | None = None,
    preprocess: str | None = None,
    seed: int = 0,
    max_points: int = 1000,
    cache: dict | None = None,
) -> Figure:
    """2-D maps of one or several latent spaces, side by side, coloured by label or by k-means cluster.

    Args:
        z_by_model: ``{name: (N, D) codes}`` of the same N images (or one (N, D) array).
        labels: (N,) true labels (used for colour and to score the clusters, never to fit them).
        projection: ``"pca"`` or ``"tsne"`` (on a seeded subsample of ``max_points``).
        color_by: ``"label"`` or ``"cluster"`` (k-means with ``k`` clusters, default = number of
            classes, fitted on all N codes after ``preprocess``).
        models: which names of ``z_by_model`` to draw (default: all).
        cache: a dict reused between calls, so t-SNE and k-means run once per model.
    """
    if isinstance(z_by_model, np.ndarray):
        z_by_model = {"latent": z_by_model}
    if color_by not in ("label", "cluster"):
        raise ValueError(f"color_by must be 'label' or 'cluster', got {color_by!r}")
    names = list(models) if models is not None else list(z_by_model)
    unknown = [n for n in names if n not in z_by_model]
    if unknown:
        raise ValueError(f"unknown models {unknown}; choose from {list(z_by_model)}")
    labels = np.asarray(labels).reshape(-1)
    k = int(k or len(np.unique(labels)))
    cache = {} if cache is None else cache
    fig, axes = plt.subplots(1, len(names), figsize=(4.6 * len(names), 4.6), squeeze=False, layout="constrained")
    for ax, name in zip(axes[0], names):
        z = np.asarray(z_by_model[name])
        key = (name, projection, max_points, seed, len(z))
        if key not in cache:
            cache[key] = plots.project_2d(z, projection, seed=seed, max_points=max_points)
        z2d, idx = cache[key]
        title = f"{name}\n{'t-SNE' if projection == 'tsne' else projection.upper()} of {len(idx)} codes"
        if color_by == "label":
            plots.latent_map(z2d, labels[idx], title + ", coloured by true label", ax=ax, class_names=class_names)
        else:
            ckey = (name, "kmeans", k, preprocess, seed, len(z))
            if ckey not in cache:
                cache[ckey] = cluster_latents(z, k, "kmeans", preprocess, seed=seed)
            clusters = cache[ckey]
            acc, floor = hungarian_accuracy(labels, clusters), majority_class_floor(labels)
            plots.latent_map(z2d, clusters[idx], title + f", k-means k = {k}\nHungarian acc {acc:.3f} (floor {floor:.3f})", ax=ax)
    return fig


def latent_map_explorer(
    z_by_model: Mapping[str, np.ndarray],
    labels: np.ndarray,
    class_names: Sequence[str] | None = None,
    preprocess: str | None = None,
    seed: int = 0,
    max_points: int = 1000,
) -> Explorer:
    """Dropdowns for the projection, the colouring and the model, over :func:`render_latent_map`."""
    cache: dict = {}
    controls = {
        "projection": dropdown([("PCA", "pca"), ("t-SNE (slower)", "tsne")], "pca", "projection"),
        "color_by": dropdown([("true label", "label"), ("k-means cluster", "cluster")], "label", "colour by"),
        "model": dropdown([("all, side by side", "__all__")] + [(n, n) for n in z_by_model], "__all__", "model"),
    }

    def render(projection: str, color_by: str, model: str) -> Figure:
        return render_latent_map(z_by_model, labels, projection, color_by, None if model == "__all__" else [model],
                                 class_names, preprocess=preprocess, seed=seed, max_points=max_points, cache=cache)

    return Explorer(render, controls, title="Latent maps: the same test images, seen by each model")
