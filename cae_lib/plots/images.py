"""Image figures: grids, one row per class, inputs above reconstructions, one row per cluster.

Every function takes images as uint8 ``(N, H, W)`` / ``(N, H, W, C)`` or float ``(N, C, H, W)``
in [0, 1] (NumPy or torch), with 1 or 3 channels; :func:`to_display` brings them to one form.
The images are tiled into one array and drawn with a single ``imshow`` on one axis, so even a
large grid is quick to draw.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cae_lib.plots.axes import class_name, new_ax


def to_display(images: Any) -> np.ndarray:
    """Convert a batch of images to float ``(N, H, W)`` or ``(N, H, W, 3)`` in [0, 1].

    Accepts uint8 ``(N, H, W)`` / ``(N, H, W, C)``, float ``(N, C, H, W)`` or ``(N, H, W, C)``
    in [0, 1], as NumPy arrays or torch tensors. One-channel images lose their channel axis.
    """
    if hasattr(images, "detach"):  # torch tensor
        images = images.detach().cpu().numpy()
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255.0
    x = np.clip(x.astype(np.float32), 0.0, 1.0)
    if x.ndim == 4 and x.shape[1] in (1, 3) and x.shape[-1] not in (1, 3):
        x = x.transpose(0, 2, 3, 1)  # (N, C, H, W) -> (N, H, W, C)
    if x.ndim == 4 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.ndim not in (3, 4) or (x.ndim == 4 and x.shape[-1] != 3):
        raise ValueError(
            f"expected images (N, H, W), (N, H, W, C) or (N, C, H, W) with C in (1, 3), got {x.shape}"
        )
    return x


def _mosaic(rows: list[list[np.ndarray | None]], pad: int = 2) -> np.ndarray:
    """Tile images into one array; ``None`` leaves a blank tile. All images share one shape."""
    first = next(img for row in rows for img in row if img is not None)
    h, w = first.shape[:2]
    n_cols = max(len(r) for r in rows)
    shape = (len(rows) * (h + pad) + pad, n_cols * (w + pad) + pad) + first.shape[2:]
    canvas = np.ones(shape, dtype=np.float32)  # white background
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            if img is not None:
                top, left = pad + i * (h + pad), pad + j * (w + pad)
                canvas[top : top + h, left : left + w] = img
    return canvas


def _show_rows(
    rows: list[list[np.ndarray | None]],
    row_labels: Sequence[str] | None,
    ax: Axes | None,
    cmap: str = "gray",
    pad: int = 2,
) -> Figure:
    """Draw a mosaic of image rows on one axis, with a label to the left of each row."""
    canvas = _mosaic(rows, pad)
    n_cols = max(len(r) for r in rows)
    # "compressed" layout: like "constrained", but made for fixed-aspect axes such as images
    fig, ax = new_ax(ax, (min(1.0 * n_cols + 1.5, 16), min(1.0 * len(rows) + 0.5, 16)), "compressed")
    ax.imshow(canvas, cmap=cmap, vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    h = next(img for row in rows for img in row if img is not None).shape[0]
    if row_labels is not None:
        ax.set_yticks([pad + i * (h + pad) + h / 2 for i in range(len(rows))], list(row_labels))
        ax.tick_params(axis="y", length=0)
    else:
        ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    return fig


def image_grid(
    images: Any,
    nrow: int = 8,
    titles: Sequence[str] | None = None,
    ax: Axes | None = None,
    cmap: str = "gray",
) -> Figure:
    """Show images in a grid with ``nrow`` images per row (as ``torchvision.utils.make_grid``).

    Args:
        images: (N, H, W) / (N, H, W, C) uint8, or (N, C, H, W) float in [0, 1]; C in (1, 3).
        nrow: images per row.
        titles: optional short caption per image, drawn at the top of its tile.
        ax: axis to draw into (the grid is one image on one axis).
        cmap: colour map for one-channel images.
    """
    x = to_display(images)
    rows = [list(x[i : i + nrow]) for i in range(0, len(x), nrow)]
    fig = _show_rows(rows, None, ax, cmap)
    ax = ax if ax is not None else fig.axes[0]
    if titles is not None:
        h, w, pad = x.shape[1], x.shape[2], 2
        for i, title in enumerate(titles[: len(x)]):
            r, c = divmod(i, nrow)
            ax.text(pad + c * (w + pad) + w / 2, pad + r * (h + pad), str(title), ha="center", va="top",
                    fontsize=7, bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "linewidth": 0})
    return fig


def class_montage(
    images: Any,
    labels: np.ndarray,
    class_names: Sequence[str] | None = None,
    per_class: int = 8,
    ax: Axes | None = None,
    seed: int = 0,
    cmap: str = "gray",
) -> Figure:
    """One row of ``per_class`` random examples for each class (seeded).

    Args:
        images: (N, ...) images (see :func:`to_display`); labels: (N,) int labels.
        class_names: row labels; defaults to the label values.
    """
    x = to_display(images)
    labels = np.asarray(labels).reshape(len(x), -1)[:, 0]
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    rows = []
    for c in classes:
        members = np.flatnonzero(labels == c)
        pick = rng.choice(members, size=min(per_class, len(members)), replace=False)
        rows.append(list(x[np.sort(pick)]))
    names = [class_name(c, class_names) for c in classes]
    return _show_rows(rows, names, ax, cmap)


def reconstructions(
    originals: Any,
    reconstructions: Any,
    n: int = 8,
    ax: Axes | None = None,
    cmap: str = "gray",
) -> Figure:
    """Two rows: the first ``n`` inputs above, their reconstructions below.

    Args:
        originals, reconstructions: image batches of the same shape (see :func:`to_display`).
    """
    a, b = to_display(originals)[:n], to_display(reconstructions)[:n]
    if a.shape != b.shape:
        raise ValueError(f"originals {a.shape} and reconstructions {b.shape} must have the same shape")
    return _show_rows([list(a), list(b)], ["input", "reconstruction"], ax, cmap)


def cluster_montages(
    images: Any,
    cluster_labels: Sequence[int],
    indices_per_cluster: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    ax: Axes | None = None,
    cmap: str = "gray",
) -> Figure:
    """One row of images per cluster, e.g. the most typical members from ``subgroup_report``.

    Args:
        images: (N, ...) the whole image set (see :func:`to_display`).
        cluster_labels: the cluster id of each row.
        indices_per_cluster: for each row, indices into ``images`` to show.
        titles: optional row labels; default ``"cluster <id>"``.
    """
    x = to_display(images)
    rows = [list(x[np.asarray(idx, dtype=int)]) or [None] for idx in indices_per_cluster]
    if titles is None:
        titles = [f"cluster {c}" for c in cluster_labels]
    return _show_rows(rows, titles, ax, cmap)


def subgroup_montages(
    images: Any,
    report: list[dict],
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """:func:`cluster_montages` for the output of :func:`cae_lib.cluster.subgroup_report`.

    Each row is titled with the cluster id, its size, and its majority label with purity.
    """
    titles = []
    for entry in report:
        title = f"c{entry['cluster']} (n={entry['size']})"
        if entry.get("majority_label") is not None:
            title += f"\n{entry['purity']:.0%} {class_name(entry['majority_label'], class_names)}"
        titles.append(title)
    return cluster_montages(
        images, [e["cluster"] for e in report], [e["typical_indices"] for e in report], titles, ax
    )
