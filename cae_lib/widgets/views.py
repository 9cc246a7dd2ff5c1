"""Explorer 1, contrastive views: how strong may the augmentation be before an image stops being itself?"""

from __future__ import annotations

import dataclasses
from typing import Any

import ipywidgets as widgets
import torch
from matplotlib.figure import Figure

from cae_lib.augment import ContrastiveAugment
from cae_lib.config import AugmentConfig
from cae_lib.widgets.common import Explorer, as_batch, rows_figure, slider


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
    x = as_batch(images, n_images)
    aug = ContrastiveAugment(dataclasses.replace(config or AugmentConfig(), strength=float(strength)))
    g = torch.Generator().manual_seed(int(seed))
    views = [aug(x, g) for _ in range(n_views)]  # each (n, C, H, W)
    rows = [torch.stack([x[i]] + [v[i] for v in views]) for i in range(len(x))]
    return rows_figure(rows, [f"image {i}" for i in range(len(x))],
                       f"left: the image; then {n_views} random views at strength {strength:g} (seed {seed})")


def augmentation_explorer(images: Any, n_images: int = 4, n_views: int = 5, config: AugmentConfig | None = None) -> Explorer:
    """Sliders for the augmentation strength and the seed, over :func:`render_views`."""
    start = (config or AugmentConfig()).strength
    controls = {
        "strength": slider(widgets.FloatSlider, start, 0.0, 3.0, 0.25, "strength"),
        "seed": slider(widgets.IntSlider, 0, 0, 50, 1, "seed"),
    }
    return Explorer(lambda strength, seed: render_views(images, strength, seed, n_images, n_views, config), controls,
                    title="Contrastive views: how strong may the augmentation be before the image stops being itself?")
