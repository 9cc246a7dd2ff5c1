"""Explorers 4-6, decoding: walk along latent directions, morph one image into another, sample a class.

Each render function decodes codes with the model and draws the images in rows
(:func:`~cae_lib.widgets.common.rows_figure`); the explorer puts its arguments behind sliders.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import ipywidgets as widgets
import numpy as np
from matplotlib.figure import Figure

from cae_lib import plots
from cae_lib.batches import images_of
from cae_lib.sampling import Interpolator, LatentSampler, LatentTraversal
from cae_lib.plots.axes import class_name
from cae_lib.widgets.common import Explorer, dropdown, rows_figure, slider


# --------------------------------------------------------------------------------------------
# Traversal
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
    return rows_figure(rows, labels, f"from {origin}: columns go from {-max_sd:g} to +{max_sd:g} sd in {int(steps)} steps")


def traversal_explorer(model: Any, traversal: LatentTraversal, images: Any = None, n_directions: int = 1) -> Explorer:
    """Sliders for the direction, its range and the start (mean code or one of ``images``)."""
    controls: dict[str, widgets.Widget] = {
        "direction": slider(widgets.IntSlider, 0, 0, int(traversal.latent_dim) - 1, 1, "direction"),
        "basis": dropdown([("principal directions", "pca"), ("raw latent axes", "raw")], "pca", "basis"),
        "max_sd": slider(widgets.FloatSlider, 2.0, 0.5, 4.0, 0.5, "range (sd)"),
        "steps": slider(widgets.IntSlider, 7, 3, 11, 2, "steps"),
    }
    if images is not None:
        n = len(images_of(images))
        controls["start"] = slider(widgets.IntSlider, -1, -1, n - 1, 1, "start image (-1: mean)")

    def render(direction: int, basis: str, max_sd: float, steps: int, start: int = -1) -> Figure:
        x0 = None if start < 0 else images_of(images)[start]
        return render_traversal(model, traversal, direction, n_directions, max_sd, steps, basis, x0)

    return Explorer(render, controls, title="Latent traversal: what does each direction of the latent space change?")


# --------------------------------------------------------------------------------------------
# Interpolation
# --------------------------------------------------------------------------------------------
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
    arr = images_of(images)
    if labels is None and hasattr(images, "labels"):
        labels = images.labels
    for i in (index_a, index_b):
        if not 0 <= int(i) < len(arr):
            raise ValueError(f"image index {i} is out of range: choose 0..{len(arr) - 1}")
    path = Interpolator().interpolate(model, arr[int(index_a)], arr[int(index_b)], int(steps), slerp)

    def tag(i: int) -> str:
        return f"#{i}" + (f" ({class_name(labels[i], class_names)})" if labels is not None else "")

    rows = [np.stack([arr[int(index_a)], arr[int(index_b)]]), path]
    return rows_figure(rows, ["inputs\na | b", "decoded path\na -> b"],
                       f"{'slerp' if slerp else 'linear'} interpolation from {tag(int(index_a))} to {tag(int(index_b))}")


def interpolation_explorer(
    model: Any, images: Any, labels: np.ndarray | None = None, class_names: Sequence[str] | None = None
) -> Explorer:
    """Choose two images by index, the number of steps and linear vs spherical paths."""
    n = len(images_of(images))
    controls = {
        "index_a": slider(widgets.IntSlider, 0, 0, n - 1, 1, "image a"),
        "index_b": slider(widgets.IntSlider, min(1, n - 1), 0, n - 1, 1, "image b"),
        "steps": slider(widgets.IntSlider, 8, 3, 12, 1, "steps"),
        "slerp": widgets.Checkbox(value=False, description="slerp"),
    }

    def render(index_a: int, index_b: int, steps: int, slerp: bool) -> Figure:
        return render_interpolation(model, images, index_a, index_b, steps, slerp, labels, class_names)

    return Explorer(render, controls, title="Interpolation: does image a morph into image b through plausible images?")


# --------------------------------------------------------------------------------------------
# Sampling
# --------------------------------------------------------------------------------------------
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
        titles = [f"{class_name(l, class_names)[:8]} {c:.2f}" for l, c in zip(s.labels, s.confidence)]
    else:
        titles = [f"{c:.2f}" for c in s.confidence]
    fig = plots.image_grid(s.images, nrow=nrow, titles=titles)
    what = "any class (in training proportions)" if label is None else f"class {class_name(label, class_names)}"
    fig.suptitle(f"{sampler.name}: {n} samples of {what}, scale {scale:g}, seed {seed}; "
                 f"mean label confidence {np.nanmean(s.confidence):.2f}", fontsize=10)
    return fig


def class_sampling_explorer(
    model: Any, sampler: LatentSampler, class_names: Sequence[str] | None = None, n: int = 16
) -> Explorer:
    """A class dropdown, a temperature (scale) slider and a seed, over :func:`render_class_samples`."""
    options = [("any class", -1)] + [(class_name(c, class_names), int(c)) for c in sampler.classes_]
    controls = {
        "label": dropdown(options, int(sampler.classes_[0]) if len(sampler.classes_) else -1, "class"),
        "scale": slider(widgets.FloatSlider, 1.0, 0.0, 2.5, 0.1, "scale (temperature)"),
        "seed": slider(widgets.IntSlider, 0, 0, 99, 1, "seed"),
        "n": slider(widgets.IntSlider, n, 4, 32, 4, "samples"),
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
            names.append(f"{name}\n" + ", ".join(f"{class_name(c, class_names)[:10]}: {m}" for c, m in enumerate(counts) if m))
        else:
            names.append(name)
    return rows_figure(rows, names, f"{n} samples per sampler (seed {seed}, scale {scale:g}); labels = sampled classes")
