"""Latent-space maps: project codes to 2-D (PCA or t-SNE) and scatter them by label or cluster."""

from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cae_lib.plots.axes import class_name, new_ax


def project_2d(
    z: np.ndarray, method: str = "pca", seed: int = 0, max_points: int = 2000
) -> tuple[np.ndarray, np.ndarray]:
    """Project latents to 2-D for plotting, on a seeded subsample of at most ``max_points``.

    Args:
        z: (N, D) latents.
        method: ``"pca"`` (fast, linear, faithful to global distances) or ``"tsne"`` (slower,
            keeps neighbourhoods; distances between far clusters mean nothing).

    Returns:
        ``(z2d, indices)``: (M, 2) coordinates and the (M,) sorted indices of the rows used, so
        colours can be taken as ``y[indices]``.
    """
    # Imported here, not at the top: t-SNE's module takes about a second to import, and
    # ``from cae_lib import plots`` (the CLI, every notebook) should not pay for it until a map is drawn.
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    z = np.asarray(z, dtype=np.float64)
    idx = np.arange(len(z))
    if len(z) > max_points:
        idx = np.sort(np.random.default_rng(seed).choice(len(z), size=max_points, replace=False))
    if method == "pca":
        model = PCA(n_components=2, random_state=seed)
    elif method == "tsne":
        perplexity = min(30.0, (len(idx) - 1) / 3)
        model = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    else:
        raise ValueError(f"unknown projection {method!r}; valid methods: 'pca', 'tsne'")
    # One thread: on small or shared machines (Binder, laptops) t-SNE's threads mostly wait on
    # each other; single-threaded it was 4x faster in our tests (2000 points: about 10 s).
    with threadpool_limits(limits=1):
        return model.fit_transform(z[idx]), idx


def latent_map(
    z2d: np.ndarray,
    color: np.ndarray,
    title: str = "",
    ax: Axes | None = None,
    categorical: bool = True,
    class_names: Sequence[str] | None = None,
    s: float = 6,
) -> Figure:
    """Scatter a 2-D projection coloured by label or cluster id (categorical) or by a value.

    Args:
        z2d: (M, 2) coordinates (e.g. from :func:`project_2d`).
        color: (M,) labels / cluster ids, or continuous values when ``categorical=False``.
        class_names: legend names for the categories.
    """
    fig, ax = new_ax(ax, (5, 5))
    z2d, color = np.asarray(z2d), np.asarray(color).reshape(len(z2d), -1)[:, 0]
    if categorical:
        cmap = plt.get_cmap("tab10" if len(np.unique(color)) <= 10 else "tab20")
        for i, c in enumerate(np.unique(color)):
            m = color == c
            label = class_name(c, class_names)
            ax.scatter(z2d[m, 0], z2d[m, 1], s=s, color=cmap(i % cmap.N), label=label, alpha=0.7)
        ax.legend(fontsize=8, markerscale=2, loc="best")
    else:
        points = ax.scatter(z2d[:, 0], z2d[:, 1], s=s, c=color, cmap="viridis", alpha=0.7)
        fig.colorbar(points, ax=ax)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig
