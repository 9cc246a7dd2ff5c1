"""The bundled dataset: scikit-learn's 1,797 handwritten digits at 28 x 28, usable offline.

It stands in when a MedMNIST file cannot be had (``load_dataset(..., fallback="digits")``) and
lets a notebook or a test run without any download.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from cae_lib.data.image_data import ImageData
from cae_lib.data.layout import check_split, stratified_split
from cae_lib.data.registry import DIGITS_FRACTIONS, DIGITS_SEED, get_info


def _digits_all() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 sklearn digits as uint8 (N, 28, 28): 0..16 scaled to 0..255, bilinear 8 -> 28."""
    # Imported here so that ``import cae_lib.data`` stays free of scikit-learn (a test pins this).
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    images = (x[:, 0] * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return images, bunch.target.astype(np.int64)


def load_digits_split(split: str = "train", size: int = 28) -> ImageData:
    """scikit-learn's digits, resized to 28x28, split 70 / 10 / 20 (stratified, seed 0). Offline."""
    info = get_info("digits")
    info.check_size(size)
    check_split(split)
    images, labels = _digits_all()
    rows = stratified_split(labels, DIGITS_FRACTIONS, DIGITS_SEED)[split]
    return ImageData(
        images=images[rows], labels=labels[rows], name="digits", split=split,
        class_names=info.class_names, task=info.task, source="sklearn digits",
    )
