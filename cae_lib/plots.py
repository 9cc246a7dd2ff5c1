"""Figure functions for the notebooks and the report.

Conventions (the same for every function):

- each returns a ``matplotlib.figure.Figure`` and never calls ``plt.show()``;
- each accepts ``ax=`` (or ``axes=`` where it needs several panels) to draw into your own
  figure; without it a new figure is created;
- images may be uint8 ``(N, H, W)`` / ``(N, H, W, C)`` or float ``(N, C, H, W)`` in [0, 1]
  (NumPy or torch), with 1 or 3 channels.

Close figures you no longer need (``plt.close(fig)``) in loops, or memory grows.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cae_lib.metrics import contingency_matrix, hungarian_mapping

# ----------------------------------------------------------------------------------------
# images
# ----------------------------------------------------------------------------------------


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


def _new_ax(ax: Axes | None, figsize: tuple[float, float], layout: str = "constrained") -> tuple[Figure, Axes]:
    """Return ``(ax.figure, ax)``, or a new figure with one axis when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout=layout)
    return fig, ax


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
    fig, ax = _new_ax(ax, (min(1.0 * n_cols + 1.5, 16), min(1.0 * len(rows) + 0.5, 16)), "compressed")
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
    names = [_name(c, class_names) for c in classes]
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
            title += f"\n{entry['purity']:.0%} {_name(entry['majority_label'], class_names)}"
        titles.append(title)
    return cluster_montages(
        images, [e["cluster"] for e in report], [e["typical_indices"] for e in report], titles, ax
    )


def _name(label: Any, class_names: Sequence[str] | Mapping | None) -> str:
    """Class name of an integer label, or the label itself when no names are given."""
    if class_names is None:
        return str(label)
    try:
        return str(class_names[int(label)])
    except (IndexError, KeyError, TypeError, ValueError):
        return str(label)


# ----------------------------------------------------------------------------------------
# data and training
# ----------------------------------------------------------------------------------------


def class_balance(
    counts_by_split: Mapping[str, np.ndarray],
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars of the class fractions in each split, with each split's majority floor.

    Args:
        counts_by_split: ``{"train": (n_classes,) counts, "test": ...}``.
        class_names: x tick labels.

    The dashed line of each split marks its majority-class floor: the accuracy of always
    predicting the biggest class, which every reported accuracy must beat.
    """
    fig, ax = _new_ax(ax, (7, 4))
    n_splits = len(counts_by_split)
    width = 0.8 / max(n_splits, 1)
    for i, (split, counts) in enumerate(counts_by_split.items()):
        counts = np.asarray(counts, dtype=float)
        frac = counts / counts.sum()
        xs = np.arange(len(counts)) + (i - (n_splits - 1) / 2) * width
        floor = frac.max()
        bars = ax.bar(xs, frac, width, label=f"{split} (n={int(counts.sum())}, floor {floor:.3f})")
        ax.axhline(floor, ls="--", lw=1, color=bars.patches[0].get_facecolor())
    n_classes = len(next(iter(counts_by_split.values())))
    ax.set_xticks(np.arange(n_classes), [_name(c, class_names) for c in range(n_classes)],
                  rotation=30 if n_classes > 4 else 0, ha="right" if n_classes > 4 else "center")
    ax.set_ylabel("fraction of split")
    ax.set_title("Class balance (dashed: majority-class floor)")
    ax.legend(fontsize=8)
    return fig


ACCURACY_KEYS = ("top1", "top5")
NOT_PLOTTED = ("epoch", "step", "lr", "time", "seconds", "epoch_time", "peak_memory_mb", "images_per_sec")


History = Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]]


def _history_columns(history: History) -> dict[str, np.ndarray]:
    """A history as ``{key: (epochs,) float array}``; missing or non-numeric values become NaN."""
    if isinstance(history, Mapping):
        return {k: np.asarray(v, dtype=float) for k, v in history.items()}
    keys = list(dict.fromkeys(k for row in history for k in row))
    cols = {}
    for k in keys:
        vals = [row.get(k) for row in history]
        if all(isinstance(v, (int, float, np.number)) or v is None for v in vals):
            cols[k] = np.array([np.nan if v is None else float(v) for v in vals])
    return cols


def training_curves(
    history: History,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """One panel per loss term, plus a panel for the positive-pair top-1 / top-5 accuracy.

    Args:
        history: a list of per-epoch dicts, e.g.
            ``[{"epoch": 1, "loss": .., "recon": .., "contrastive": .., "kl": .., "top1": .., "top5": ..,
            "val_loss": ..}, ...]``, or a dict of lists. A ``val_<key>`` series shares the panel of
            ``<key>`` (dashed). Missing keys are skipped; ``epoch``, ``lr`` and timings are not plotted.
        axes: optional axes, at least one per panel.

    Top-1 / top-5 is how often the positive view ranks first / in the top five among the
    2N-1 candidates: easier to read than the loss value (chance top-1 is 1 / (2N-1)).
    """
    cols = _history_columns(history)
    epochs = cols.get("epoch", np.arange(1, len(next(iter(cols.values()), [])) + 1))
    panels = _history_panels(cols)
    if not panels:
        raise ValueError(f"nothing to plot: no numeric loss or accuracy keys in history ({list(cols)})")
    if axes is None:
        n_cols = min(len(panels), 3)
        n_rows = -(-len(panels) // n_cols)
        fig, grid = plt.subplots(
            n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows), squeeze=False, layout="constrained"
        )
        axes = list(grid.ravel())
        for extra in axes[len(panels):]:
            fig.delaxes(extra)
    elif len(axes) < len(panels):
        names = [title for title, _ in panels]
        raise ValueError(f"history has {len(panels)} panels ({names}) but only {len(axes)} axes were given")
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            ax.plot(epochs, cols[key], ls="--" if key.startswith("val_") else "-", marker=".", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    return axes[0].figure


def _history_panels(cols: Mapping[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """Group history keys into panels: one per loss term (with its val_ twin), then accuracy."""
    usable = [k for k, v in cols.items() if k not in NOT_PLOTTED and np.isfinite(v).any()]
    base = lambda k: k[4:] if k.startswith("val_") else k  # noqa: E731
    panels: dict[str, list[str]] = {}
    for k in usable:
        if base(k) not in ACCURACY_KEYS:
            panels.setdefault(base(k), []).append(k)
    acc = [k for k in usable if base(k) in ACCURACY_KEYS]
    out = list(panels.items())
    if acc:
        out.append(("positive-pair accuracy", acc))
    return out


# ----------------------------------------------------------------------------------------
# latent space and clustering
# ----------------------------------------------------------------------------------------


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
    fig, ax = _new_ax(ax, (5, 5))
    z2d, color = np.asarray(z2d), np.asarray(color).reshape(len(z2d), -1)[:, 0]
    if categorical:
        cmap = plt.get_cmap("tab10" if len(np.unique(color)) <= 10 else "tab20")
        for i, c in enumerate(np.unique(color)):
            m = color == c
            label = _name(c, class_names)
            ax.scatter(z2d[m, 0], z2d[m, 1], s=s, color=cmap(i % cmap.N), label=label, alpha=0.7)
        ax.legend(fontsize=8, markerscale=2, loc="best")
    else:
        points = ax.scatter(z2d[:, 0], z2d[:, 1], s=s, c=color, cmap="viridis", alpha=0.7)
        fig.colorbar(points, ax=ax)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    return fig


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
    import seaborn as sns

    counts, clusters, labels = contingency_matrix(y_true, y_pred)  # (clusters, labels)
    mapping = hungarian_mapping(y_true, y_pred)
    rank = {lab: i for i, lab in enumerate(labels)}
    matched_rank = [rank.get(mapping.get(int(c)), len(labels)) for c in clusters]  # unmatched: last
    order = sorted(range(len(clusters)), key=lambda i: (matched_rank[i], i))
    table = counts[order].T  # (labels, clusters in matched order)
    col_names = [
        f"c{clusters[i]}→{_name(mapping[int(clusters[i])], class_names)}" if int(clusters[i]) in mapping
        else f"c{clusters[i]}"
        for i in order
    ]
    fig, ax = _new_ax(ax, (max(4.5, 1.5 + 0.7 * len(clusters)), max(3.5, 1.5 + 0.5 * len(labels))))
    sns.heatmap(table, annot=table.size <= 400, fmt="d", cmap="Blues", cbar=False, ax=ax,
                xticklabels=col_names, yticklabels=[_name(l, class_names) for l in labels])
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
    fig, ax = _new_ax(ax, (6, 4))
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


# ----------------------------------------------------------------------------------------
# results
# ----------------------------------------------------------------------------------------


def results_bar_chart(
    table_rows: Sequence[Mapping[str, Any]],
    metric: str = "hungarian_acc",
    error: str = "sd",
    floor: float | None = None,
    references: Mapping[str, float] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Bars of ``<metric>_mean`` ± ``<metric>_<error>`` per method, the floor, and published numbers.

    Args:
        table_rows: e.g. ``[{"method": "CAE", "hungarian_acc_mean": 0.85, "hungarian_acc_sd": 0.01}]``;
            a row with a plain ``metric`` key (single run) is drawn without an error bar.
        metric: which metric to plot.
        error: suffix of the error column (``"sd"``, ``"sem"``, ...).
        floor: majority-class floor, drawn as a dashed horizontal line.
        references: published numbers ``{name: value}``, drawn as stars; a name equal to a
            method puts its star on that method's bar, other names get their own position.
    """
    fig, ax = _new_ax(ax, (1.5 + 0.9 * (len(table_rows) + len(references or {})), 4))
    names = [str(r["method"]) for r in table_rows]
    means = [float(r.get(f"{metric}_mean", r.get(metric, np.nan))) for r in table_rows]
    errs = [float(r.get(f"{metric}_{error}", 0.0) or 0.0) for r in table_rows]
    ax.bar(range(len(names)), means, yerr=errs, capsize=4, color="C0", alpha=0.8)
    for i, m in enumerate(means):
        ax.annotate(f"{m:.3f}", (i, m), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    labels = list(names)
    for j, (ref_name, value) in enumerate((references or {}).items()):
        if ref_name in names:
            x = names.index(ref_name)
        else:
            x = len(labels)
            labels.append(f"{ref_name}\n(published)")
        ax.plot(x, value, marker="*", ms=13, color="C3", ls="none", label="published" if j == 0 else None)
    if floor is not None:
        ax.axhline(floor, ls="--", color="gray", label=f"majority-class floor {floor:.3f}")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} (mean ± {error})")
    if floor is not None or references:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def label_efficiency(
    curves: Mapping[str, Mapping[float, tuple[float, float]]],
    ax: Axes | None = None,
    floor: float | None = None,
    ylabel: str = "test accuracy",
) -> Figure:
    """Accuracy against the fraction of training labels used (log x axis), one line per method.

    Args:
        curves: ``{method: {fraction: (mean, sd)}}``,
            e.g. ``{"CAE probe": {0.01: (0.80, 0.02), 1.0: (0.86, 0.01)}}``.
        floor: optional majority-class floor, drawn dashed.
    """
    fig, ax = _new_ax(ax, (6, 4))
    for method, points in curves.items():
        fracs = sorted(points)
        mean = [points[f][0] for f in fracs]
        sd = [points[f][1] for f in fracs]
        ax.errorbar(fracs, mean, yerr=sd, marker="o", capsize=3, label=method)
    if floor is not None:
        ax.axhline(floor, ls="--", color="gray", label=f"majority-class floor {floor:.3f}")
    ax.set_xscale("log")
    all_fracs = sorted({f for points in curves.values() for f in points})
    ax.set_xticks(all_fracs, [f"{f:.0%}" if f >= 0.01 else f"{f:.1%}" for f in all_fracs])
    ax.minorticks_off()
    ax.set(xlabel="fraction of training labels", ylabel=ylabel, title="Label efficiency")
    ax.legend(fontsize=8)
    return fig
