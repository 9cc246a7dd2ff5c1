"""The MedMNIST layout, and bringing arrays into it: images, labels, class names, splits.

Every dataset in cae-lib, official or your own, ends up as

    images   uint8, (N, H, W) for grey or (N, H, W, C) for RGB
    labels   int64, (N,), one class per image, values 0 .. K-1
    names    one class name per label, in label order

cut into the three splits ``train`` / ``val`` / ``test``. This module converts to that form
(:func:`to_medmnist_layout`, :func:`labels_to_1d`, :func:`center_square`, :func:`resize_images`), reads class names
(:func:`read_class_names`) and cuts a labelled set into splits (:func:`stratified_split`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cae_lib.data.registry import SPLITS

SPLIT_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)
SPLIT_SEED = 0


# --------------------------------------------------------------------------------------------
# Splits
# --------------------------------------------------------------------------------------------
def check_split(split: str) -> str:
    """Return ``split`` if it is ``"train"``, ``"val"`` or ``"test"``; else raise ``ValueError`` naming them."""
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Valid splits: {', '.join(SPLITS)}.")
    return split


def stratified_split(
    labels: np.ndarray,
    fractions: Sequence[float] = SPLIT_FRACTIONS,
    seed: int = SPLIT_SEED,
) -> dict[str, np.ndarray]:
    """Split row indices into train / val / test, class by class, reproducibly.

    Within each class (in label order) the rows are shuffled with ``np.random.default_rng(seed)``;
    the first ``round(n * f_test)`` go to test, the next ``round(n * f_val)`` to val, the rest to train.

    Args:
        labels: (N,) integer labels.
        fractions: (train, val, test), summing to 1.
        seed: shuffling seed.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each a sorted int64 array.
    """
    labels = np.asarray(labels).reshape(-1)
    f_train, f_val, f_test = fractions
    if min(fractions) < 0 or abs(f_train + f_val + f_test - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(np.floor(len(idx) * f_test + 0.5))
        n_val = int(np.floor(len(idx) * f_val + 0.5))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for s, p in parts.items()}


# --------------------------------------------------------------------------------------------
# Images and labels
# --------------------------------------------------------------------------------------------
def to_medmnist_layout(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert images to the MedMNIST layout: uint8, (N, H, W) grey or (N, H, W, C) RGB.

    Accepts:
        - a ``torch.Tensor`` (B, C, H, W) or (B, H, W): the toolkit's channels-first convention,
          e.g. decoder output;
        - a NumPy array already in MedMNIST layout, (N, H, W) or (N, H, W, C) with C in {1, 3}.

    Floats must be finite and lie in [0, 1]; they are scaled to 0..255. Floats on the 0..255 scale are
    refused with the fix, never guessed (a dark [0, 1] image and a [0, 255] one can look alike).
    Integers must lie in 0..255.
    """
    if isinstance(images, torch.Tensor):
        t = images.detach().cpu()
        if t.is_floating_point():
            t = t.float()  # float16 / bfloat16 -> float32 (NumPy has no bfloat16)
        if t.dim() == 4:
            t = t.permute(0, 2, 3, 1)
        arr = t.numpy()
    else:
        arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[-1] != 3:
        hint = ""
        if arr.shape[1] in (1, 3):
            hint = " It looks channels-first; use images.transpose(0, 2, 3, 1) (or pass a torch tensor)."
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C) with C in {{1, 3}}; got shape {arr.shape}.{hint}")
    if arr.ndim != 3 and arr.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C); got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.size == 0:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        if bad.any():
            raise ValueError(
                f"float images must be finite, but {int(bad.sum())} of {len(arr)} images hold NaN or infinite values "
                f"(the first is image {int(np.argmax(bad))}). Drop those images, or replace the values "
                "(np.nan_to_num(images, nan=0.0, posinf=1.0, neginf=0.0))."
            )
        lo, hi = float(arr.min()), float(arr.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            fix = (
                "This looks like the 0 .. 255 scale: store the images as uint8 (np.rint(images).astype(np.uint8)) "
                "or divide them by 255."
                if lo >= -1e-3 and hi <= 255 + 1e-3
                else "Rescale them first, e.g. np.rint(255 * (images - images.min()) / np.ptp(images)).astype(np.uint8)."
            )
            raise ValueError(
                f"float images must lie in [0, 1] (a float is read as a fraction of full brightness); "
                f"got values in [{lo:.4g}, {hi:.4g}]. {fix}"
            )
        return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    lo, hi = arr.min(), arr.max()
    if np.issubdtype(arr.dtype, np.integer) and 0 <= lo and hi <= 255:
        return arr.astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer):
        raise ValueError(
            f"integer images must lie in 0 .. 255; got {arr.dtype} in [{lo}, {hi}]. Rescale them to 8 bits, e.g. "
            "np.rint(255 * (images - images.min()) / np.ptp(images)).astype(np.uint8) (for 12- or 16-bit scans)."
        )
    raise ValueError(f"images must be uint8, integers in 0..255, or floats in [0, 1]; got {arr.dtype}")


def center_square(images: np.ndarray) -> np.ndarray:
    """Centre-crop MedMNIST-layout images (N, H, W[, C]) to (N, S, S[, C]), S = min(H, W); square ones are returned as is."""
    h, w = images.shape[1:3]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return images if h == w else images[:, top : top + s, left : left + s]


def resize_images(images: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    """Resize MedMNIST-layout uint8 images to ``size`` x ``size`` (bilinear, antialiased), in chunks.

    Args:
        images: uint8 (N, H, W) or (N, H, W, C).
        size: output height and width.

    Returns:
        uint8 (N, size, size) or (N, size, size, C).
    """
    if images.shape[1:3] == (size, size):
        return images
    grey = images.ndim == 3
    out = np.empty((len(images), size, size) + (() if grey else (images.shape[-1],)), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk]))
        x = x.unsqueeze(1) if grey else x.permute(0, 3, 1, 2)
        y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        y = y.round_().clamp_(0, 255).to(torch.uint8)
        y = y[:, 0] if grey else y.permute(0, 2, 3, 1)
        out[start : start + chunk] = y.numpy()
    return out


def labels_to_1d(labels: np.ndarray, where: str) -> np.ndarray:
    """(N, 1) or (N,) integer labels -> int64 (N,). Multi-column (multi-label) labels are refused."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{where}: labels have shape {labels.shape}; cae-lib needs one class per image, (N,) or (N, 1). "
            "Several columns mean a multi-label task, which this toolkit does not handle."
        )
    if labels.dtype.kind in "USO":  # text (or Python objects): not class numbers
        examples = ", ".join(repr(str(v)) for v in list(dict.fromkeys(labels.reshape(-1).tolist()))[:3])
        raise ValueError(
            f"{where}: labels are text ({examples}, ...), but cae-lib needs class numbers 0 .. K-1. Map each name to "
            "a number (e.g. names = sorted(set(labels)); numbers = [names.index(l) for l in labels]) and store the "
            "names separately (the class_names key of save_npz, or a <file>.class_names.json list)."
        )
    if labels.size and not np.issubdtype(labels.dtype, np.number) and labels.dtype != np.bool_:
        raise ValueError(f"{where}: labels must be integers 0 .. K-1, got {labels.dtype}")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.isfinite(labels)) or not np.all(np.mod(labels, 1) == 0):
            raise ValueError(f"{where}: labels must be integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        low = labels.min()
        raise ValueError(
            f"{where}: labels must be class numbers 0 .. K-1, but {int((labels < 0).sum())} are negative (the smallest "
            f"is {low:g}). If {low:g} marks unlabelled images, leave those images out; otherwise shift the labels to "
            "start at 0 (labels - labels.min())."
        )
    return labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# Class names
# --------------------------------------------------------------------------------------------
def read_class_names(path: Path, n_classes: int, folder_names: Sequence[str] | None = None) -> tuple[str, ...] | None:
    """Read a ``class_names.json`` (a list in label order, or a dict ``{folder name: display name}``)."""
    try:
        names: Any = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read class names ({err}); expected a JSON list of strings") from err
    if isinstance(names, dict) and folder_names is not None:
        names = [str(names.get(f, f)) for f in folder_names]
    if not isinstance(names, list) or len(names) != n_classes:
        raise ValueError(f"{path} must hold a JSON list of {n_classes} class names (one per class, in label order)")
    return tuple(str(n) for n in names)
