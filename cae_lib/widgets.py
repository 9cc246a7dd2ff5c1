"""Interactive explorers (ipywidgets) for the notebooks, and the plain functions behind them.

Every explorer has two layers:

* a **render function**: plain inputs -> a ``matplotlib.figure.Figure`` (and, for clustering, a
  dict of metrics). It knows nothing about widgets, so it runs in a test, a script or a static
  notebook cell exactly as it runs behind a slider;
* a **builder**: puts the render function behind sliders and dropdowns and returns an
  :class:`Explorer` (an ``ipywidgets.VBox``) that re-renders when a control changes.

=================================  ===================================  ==================================
builder                            render function                      what you explore
=================================  ===================================  ==================================
:func:`augmentation_explorer`      :func:`render_views`                 contrastive views vs strength
:func:`latent_map_explorer`        :func:`render_latent_map`            PCA / t-SNE maps, label or cluster
:func:`cluster_explorer`           :func:`render_clustering`            k, method -> metrics, confusion
:func:`traversal_explorer`         :func:`render_traversal`             walking along latent directions
:func:`interpolation_explorer`     :func:`render_interpolation`         morphing one image into another
:func:`class_sampling_explorer`    :func:`render_class_samples`         new images of a chosen class
=================================  ===================================  ==================================

Heavy callbacks (clustering, which refits a model) run only when you press **Run**; sliders use
``continuous_update=False`` so decoding happens once, when you let go of the slider. Figures are
closed after they are displayed, so moving a slider a hundred times does not grow memory.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython.display import Markdown, display
from matplotlib.figure import Figure

from cae_lib import plots
from cae_lib.augment import ContrastiveAugment
from cae_lib.cluster import LatentClusterer, cluster_latents
from cae_lib.config import AugmentConfig
from cae_lib.metrics import clustering_metrics, hungarian_accuracy, majority_class_floor
from cae_lib.sampling import Interpolator, LatentSampler, LatentTraversal

EXPLORER_TEXT = "Interactive explorer: run this notebook in Jupyter to use its controls."


# --------------------------------------------------------------------------------------------
# The widget shell shared by every explorer
# --------------------------------------------------------------------------------------------
class Explorer(widgets.VBox):
    """Controls above an output area; ``render(**values)`` is called with the controls' values.

    Args:
        render: ``render(**{name: control.value}) -> Figure`` or ``(Figure, extra)``.
        controls: ``{argument name: widget}``, in display order.
        manual: add a **Run** button and render only when it is pressed (for slow callbacks).
        show_extra: how to display ``extra`` under the figure (e.g. a Markdown table).
        title: a line of text above the controls.

    Attributes:
        figure: the last figure shown (closed, but still inspectable); ``result``: the last
        return value of ``render``.

    The first render happens at construction and raises on error (so a notebook run fails
    loudly); later renders, triggered by the controls, print the error in the output area instead.
    """

    def __init__(
        self,
        render: Callable[..., Any],
        controls: Mapping[str, widgets.Widget],
        manual: bool = False,
        show_extra: Callable[[Any], Any] | None = None,
        title: str | None = None,
    ) -> None:
        self._render = render
        self.controls = dict(controls)
        self.output = widgets.Output()
        self._show_extra = show_extra
        self.figure: Figure | None = None
        self.result: Any = None
        rows: list[widgets.Widget] = []
        if title:
            rows.append(widgets.HTML(f"<b>{title}</b>"))
        rows.append(widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")))
        self.button: widgets.Button | None = None
        if manual:
            self.button = widgets.Button(description="Run", button_style="primary", icon="play")
            self.button.on_click(lambda _: self.refresh())
            rows.append(self.button)
        else:
            for control in self.controls.values():
                control.observe(lambda _change: self.refresh(), names="value")
        rows.append(self.output)
        super().__init__(rows)
        self.refresh(raise_errors=True)

    def values(self) -> dict[str, Any]:
        """The current value of every control, by argument name."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self, raise_errors: bool = False) -> Any:
        """Call the render function with the current values and show what it returns."""
        with self.output:
            self.output.clear_output(wait=True)
            open_before = set(plt.get_fignums())
            try:
                result = self._render(**self.values())
            except Exception as err:  # shown to the student, not lost in the kernel log
                for num in set(plt.get_fignums()) - open_before:  # a half-drawn figure
                    plt.close(num)
                if raise_errors:
                    raise
                print(f"{type(err).__name__}: {err}")
                return None
            fig, extra = result if isinstance(result, tuple) else (result, None)
            display(fig)
            plt.close(fig)
            if extra is not None and self._show_extra is not None:
                display(self._show_extra(extra))
        self.figure, self.result = fig, result
        return result

    def __repr__(self) -> str:  # the text a saved notebook shows where the live widget was
        return EXPLORER_TEXT


def _slider(kind: type, value: Any, lo: Any, hi: Any, step: Any, description: str) -> widgets.Widget:
    return kind(value=value, min=lo, max=hi, step=step, description=description, continuous_update=False,
                style={"description_width": "initial"})


def _dropdown(options: Sequence[Any], value: Any, description: str) -> widgets.Dropdown:
    return widgets.Dropdown(options=options, value=value, description=description, style={"description_width": "initial"})


# --------------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------------
def _as_batch(images: Any, n: int) -> torch.Tensor:
    """The first ``n`` images -> float (n, C, H, W) in [0, 1]. Accepts an ImageData, uint8 in
    MedMNIST layout (N, H, W) / (N, H, W, C), or a float tensor (N, C, H, W). Only those n are
    converted, so a large dataset is never copied to floats whole."""
    if hasattr(images, "to_tensor"):
        return images.to_tensor(np.arange(min(n, len(images))))
    if isinstance(images, torch.Tensor) and images.dtype != torch.uint8:
        return images[:n].detach().float().cpu()
    x = torch.as_tensor(np.ascontiguousarray(np.asarray(images[:n])))
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    return x.float().div(255.0) if x.dtype == torch.uint8 else x.float()


def _images_of(images: Any) -> np.ndarray:
    """An ImageData or an image array -> the array (MedMNIST layout or (N, C, H, W))."""
    return np.asarray(images.images) if hasattr(images, "images") else images


def _name(label: Any, class_names: Sequence[str] | None) -> str:
    try:
        return str(class_names[int(label)]) if class_names is not None else str(label)
    except (IndexError, TypeError, ValueError):
        return str(label)


def _rows_figure(rows: Sequence[np.ndarray], row_labels: Sequence[str], title: str) -> Figure:
    """One row of images per entry of ``rows`` (each (n, ...) uint8 / float images), labelled on the left."""
    lengths = [len(r) for r in rows]
    stacked = np.concatenate([plots.to_display(r) for r in rows])
    starts = np.cumsum([0] + lengths[:-1])
    indices = [np.arange(s, s + n) for s, n in zip(starts, lengths)]
    fig = plots.cluster_montages(stacked, list(range(len(rows))), indices, titles=list(row_labels))
    fig.suptitle(title, fontsize=10)
    return fig


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


# --------------------------------------------------------------------------------------------
# 1. Contrastive views
# --------------------------------------------------------------------------------------------
def render_views(
    images: Any,
    strength: float = 1.0,
    seed: int = 0,
    n_images: int = 4,
    n_views: int = 5,
    config: AugmentConfig | None = None,
) -> Figure:
    """Each of the first ``n_images`` images (left) beside ``n_views`` random contrastive views.

    Args:
        images: an ImageData, uint8 images in MedMNIST layout, or a float tensor (N, C, H, W).
        strength: the :class:`~cae_lib.config.AugmentConfig` strength (0 = identical views).
        seed: seeds the augmentation; the same seed gives the same views.
        config: magnitudes at strength 1 (default :class:`AugmentConfig`); ``strength`` overrides its own.
    """
    x = _as_batch(images, n_images)
    aug = ContrastiveAugment(dataclasses.replace(config or AugmentConfig(), strength=float(strength)))
    g = torch.Generator().manual_seed(int(seed))
    views = [aug(x, g) for _ in range(n_views)]  # each (n, C, H, W)
    rows = [torch.stack([x[i]] + [v[i] for v in views]) for i in range(len(x))]
    return _rows_figure(rows, [f"image {i}" for i in range(len(x))],
                        f"left: the image; then {n_views} random views at strength {strength:g} (seed {seed})")


def augmentation_explorer(images: Any, n_images: int = 4, n_views: int = 5, config: AugmentConfig | None = None) -> Explorer:
    """Sliders for the augmentation strength and the seed, over :func:`render_views`."""
    start = (config or AugmentConfig()).strength
    controls = {
        "strength": _slider(widgets.FloatSlider, start, 0.0, 3.0, 0.25, "strength"),
        "seed": _slider(widgets.IntSlider, 0, 0, 50, 1, "seed"),
    }
    return Explorer(lambda strength, seed: render_views(images, strength, seed, n_images, n_views, config), controls,
                    title="Contrastive views: how strong may the augmentation be before the image stops being itself?")


# --------------------------------------------------------------------------------------------
# 2. Latent maps
# --------------------------------------------------------------------------------------------
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
        "projection": _dropdown([("PCA", "pca"), ("t-SNE (slower)", "tsne")], "pca", "projection"),
        "color_by": _dropdown([("true label", "label"), ("k-means cluster", "cluster")], "label", "colour by"),
        "model": _dropdown([("all, side by side", "__all__")] + [(n, n) for n in z_by_model], "__all__", "model"),
    }

    def render(projection: str, color_by: str, model: str) -> Figure:
        return render_latent_map(z_by_model, labels, projection, color_by, None if model == "__all__" else [model],
                                 class_names, preprocess=preprocess, seed=seed, max_points=max_points, cache=cache)

    return Explorer(render, controls, title="Latent maps: the same test images, seen by each model")


# --------------------------------------------------------------------------------------------
# 3. Clustering
# --------------------------------------------------------------------------------------------
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
        k: number of clusters; method: ``"kmeans"``, ``"gmm"`` or ``"agglomerative"``.
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
            titles.append(f"c{c} (n={int((pred == c).sum())})\n{counts.max() / counts.sum():.0%} {_name(lab[counts.argmax()], class_names)}")
        plots.cluster_montages(_images_of(images), shown, typical, titles, ax=ax["typical"])
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
        "k": _slider(widgets.IntSlider, n_classes, 2, max(k_max, n_classes), 1, "k (clusters)"),
        "method": _dropdown([("k-means", "kmeans"), ("Gaussian mixture", "gmm"), ("agglomerative (Ward)", "agglomerative")],
                            "kmeans", "method"),
    }

    def render(k: int, method: str) -> tuple[Figure, dict[str, Any]]:
        return render_clustering(z, y, k, method, preprocess, z_fit, images, class_names, seed)

    return Explorer(render, controls, manual=True,
                    show_extra=lambda m: Markdown(clustering_table({m["method"]: m})),
                    title=f"Clustering: choose k and the method, then press Run (the data has {n_classes} classes)")


# --------------------------------------------------------------------------------------------
# 4. Decoding: traversal, interpolation, per-class sampling
# --------------------------------------------------------------------------------------------
def render_traversal(
    model: Any,
    traversal: LatentTraversal,
    direction: int = 0,
    n_directions: int = 1,
    max_sd: float = 2.0,
    steps: int = 7,
    basis: str = "pca",
    start: Any = None,
) -> Figure:
    """Decode codes moved along ``n_directions`` directions, starting at ``direction``.

    Each row walks from ``-max_sd`` to ``+max_sd`` standard deviations (of the training codes along
    that direction) in ``steps`` steps, from ``start`` (``None``: the mean code; or an image).

    Args:
        traversal: a fitted :class:`~cae_lib.sampling.LatentTraversal`.
        basis: ``"pca"`` (principal directions, largest variance first) or ``"raw"`` (latent axes).
    """
    values = np.linspace(-max_sd, max_sd, int(steps))
    last = min(int(direction) + int(n_directions), int(traversal.latent_dim))
    rows, labels = [], []
    for d in range(int(direction), last):
        rows.append(traversal.traverse(model, start, d, values, basis))
        if basis == "pca":
            labels.append(f"PC {d + 1}\n({traversal.explained_variance_ratio_[d]:.0%} of variance)")
        else:
            labels.append(f"z[{d}]")
    origin = "the mean code" if start is None else "the chosen image's code"
    return _rows_figure(rows, labels, f"from {origin}: columns go from {-max_sd:g} to +{max_sd:g} sd in {int(steps)} steps")


def traversal_explorer(model: Any, traversal: LatentTraversal, images: Any = None, n_directions: int = 1) -> Explorer:
    """Sliders for the direction, its range and the start (mean code or one of ``images``)."""
    controls: dict[str, widgets.Widget] = {
        "direction": _slider(widgets.IntSlider, 0, 0, int(traversal.latent_dim) - 1, 1, "direction"),
        "basis": _dropdown([("principal directions", "pca"), ("raw latent axes", "raw")], "pca", "basis"),
        "max_sd": _slider(widgets.FloatSlider, 2.0, 0.5, 4.0, 0.5, "range (sd)"),
        "steps": _slider(widgets.IntSlider, 7, 3, 11, 2, "steps"),
    }
    if images is not None:
        n = len(_images_of(images))
        controls["start"] = _slider(widgets.IntSlider, -1, -1, n - 1, 1, "start image (-1: mean)")

    def render(direction: int, basis: str, max_sd: float, steps: int, start: int = -1) -> Figure:
        x0 = None if start < 0 else _images_of(images)[start]
        return render_traversal(model, traversal, direction, n_directions, max_sd, steps, basis, x0)

    return Explorer(render, controls, title="Latent traversal: what does each direction of the latent space change?")


def render_interpolation(
    model: Any,
    images: Any,
    index_a: int = 0,
    index_b: int = 1,
    steps: int = 8,
    slerp: bool = False,
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """Decode the straight (or spherical) path between the codes of two images.

    Args:
        images: an ImageData or uint8 images in MedMNIST layout; ``index_a``/``index_b`` pick two.
        labels: optional (N,) labels, shown in the row names.
    """
    arr = _images_of(images)
    if labels is None and hasattr(images, "labels"):
        labels = images.labels
    for i in (index_a, index_b):
        if not 0 <= int(i) < len(arr):
            raise ValueError(f"image index {i} is out of range: choose 0..{len(arr) - 1}")
    path = Interpolator().interpolate(model, arr[int(index_a)], arr[int(index_b)], int(steps), slerp)

    def tag(i: int) -> str:
        return f"#{i}" + (f" ({_name(labels[i], class_names)})" if labels is not None else "")

    rows = [np.stack([arr[int(index_a)], arr[int(index_b)]]), path]
    return _rows_figure(rows, ["inputs\na | b", "decoded path\na -> b"],
                        f"{'slerp' if slerp else 'linear'} interpolation from {tag(int(index_a))} to {tag(int(index_b))}")


def interpolation_explorer(
    model: Any, images: Any, labels: np.ndarray | None = None, class_names: Sequence[str] | None = None
) -> Explorer:
    """Choose two images by index, the number of steps and linear vs spherical paths."""
    n = len(_images_of(images))
    controls = {
        "index_a": _slider(widgets.IntSlider, 0, 0, n - 1, 1, "image a"),
        "index_b": _slider(widgets.IntSlider, min(1, n - 1), 0, n - 1, 1, "image b"),
        "steps": _slider(widgets.IntSlider, 8, 3, 12, 1, "steps"),
        "slerp": widgets.Checkbox(value=False, description="slerp"),
    }

    def render(index_a: int, index_b: int, steps: int, slerp: bool) -> Figure:
        return render_interpolation(model, images, index_a, index_b, steps, slerp, labels, class_names)

    return Explorer(render, controls, title="Interpolation: does image a morph into image b through plausible images?")


def render_class_samples(
    model: Any,
    sampler: LatentSampler,
    label: int | None = None,
    scale: float = 1.0,
    seed: int = 0,
    n: int = 16,
    class_names: Sequence[str] | None = None,
    nrow: int = 8,
) -> Figure:
    """Decode ``n`` samples of class ``label`` (``None`` or -1: any class) from a fitted sampler.

    Each tile is captioned with the sample's label confidence (the sampler's posterior of the
    label it carries); ``scale`` is the temperature multiplying the spread around the class mean.
    """
    label = None if label is None or int(label) < 0 else int(label)
    s = sampler.sample(model, int(n), label=label, seed=int(seed), scale=float(scale))
    if label is None:
        titles = [f"{_name(l, class_names)[:8]} {c:.2f}" for l, c in zip(s.labels, s.confidence)]
    else:
        titles = [f"{c:.2f}" for c in s.confidence]
    fig = plots.image_grid(s.images, nrow=nrow, titles=titles)
    what = "any class (in training proportions)" if label is None else f"class {_name(label, class_names)}"
    fig.suptitle(f"{sampler.name}: {n} samples of {what}, scale {scale:g}, seed {seed}; "
                 f"mean label confidence {np.nanmean(s.confidence):.2f}", fontsize=10)
    return fig


def class_sampling_explorer(
    model: Any, sampler: LatentSampler, class_names: Sequence[str] | None = None, n: int = 16
) -> Explorer:
    """A class dropdown, a temperature (scale) slider and a seed, over :func:`render_class_samples`."""
    options = [("any class", -1)] + [(_name(c, class_names), int(c)) for c in sampler.classes_]
    controls = {
        "label": _dropdown(options, int(sampler.classes_[0]) if len(sampler.classes_) else -1, "class"),
        "scale": _slider(widgets.FloatSlider, 1.0, 0.0, 2.5, 0.1, "scale (temperature)"),
        "seed": _slider(widgets.IntSlider, 0, 0, 99, 1, "seed"),
        "n": _slider(widgets.IntSlider, n, 4, 32, 4, "samples"),
    }

    def render(label: int, scale: float, seed: int, n: int) -> Figure:
        return render_class_samples(model, sampler, label, scale, seed, n, class_names)

    return Explorer(render, controls, title="Sampling: new images of the class you choose")


def render_samplers(
    model: Any,
    samplers: Mapping[str, LatentSampler],
    n: int = 8,
    seed: int = 0,
    scale: float = 1.0,
    class_names: Sequence[str] | None = None,
) -> Figure:
    """One row of ``n`` decoded samples per sampler (same seed and scale), for a side-by-side look."""
    rows, names = [], []
    for name, sampler in samplers.items():
        s = sampler.sample(model, int(n), seed=int(seed), scale=float(scale))
        rows.append(s.images)
        if (s.labels >= 0).all():
            counts = np.bincount(s.labels)
            names.append(f"{name}\n" + ", ".join(f"{_name(c, class_names)[:10]}: {m}" for c, m in enumerate(counts) if m))
        else:
            names.append(name)
    return _rows_figure(rows, names, f"{n} samples per sampler (seed {seed}, scale {scale:g}); labels = sampled classes")


__all__ = [
    "EXPLORER_TEXT",
    "Explorer",
    "augmentation_explorer",
    "class_sampling_explorer",
    "cluster_explorer",
    "clustering_table",
    "interpolation_explorer",
    "latent_map_explorer",
    "render_class_samples",
    "render_clustering",
    "render_interpolation",
    "render_latent_map",
    "render_samplers",
    "render_traversal",
    "render_views",
    "traversal_explorer",
]
