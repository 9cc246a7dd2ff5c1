"""What a sampler returns, the checks on its inputs, decoding, and saving samples to disk.

* :class:`LatentSamples` (codes) and :class:`Samples` (decoded images) are the result containers.
* :func:`check_decoder` and the ``_check_*`` helpers turn bad inputs into errors that name the fix.
* :func:`decode_latents` decodes codes ``z (n, L)`` in eval mode; :func:`images_to_uint8` turns the
  decoder output back into the MedMNIST layout.
* :func:`save_samples_npz` writes samples as a MedMNIST-layout ``.npz``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from cae_lib.data import save_npz
from cae_lib.utils import model_device

NO_LABEL = -1  #: label of a sample that could not be assigned a class (sampler fitted without labels)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class LatentSamples:
    """Codes drawn by :meth:`LatentSampler.sample_latents`.

    Attributes:
        z: float32 (n, L).
        labels: int64 (n,); ``NO_LABEL`` (-1) when the sampler was fitted without labels.
        confidence: float64 (n,) in [0, 1], how sure the sampler is of that label; NaN without labels.
    """

    z: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.z)


@dataclass
class Samples:
    """Decoded samples.

    Attributes:
        images: uint8 in MedMNIST layout, (n, H, W) for 1 channel or (n, H, W, C) for RGB.
        x: float32 tensor (n, C, H, W) in [0, 1] on the CPU (the decoder output).
        z: float32 (n, L), the codes that were decoded.
        labels: int64 (n,); -1 when unknown.
        confidence: float64 (n,); NaN when unknown.
    """

    images: np.ndarray
    x: torch.Tensor
    z: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------
def _check_latents(z: Any, where: str) -> np.ndarray:
    """(N, L) finite floats -> float64 array, or a clear error."""
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"{where}: latents must be a 2-D array (N, L); got shape {z.shape}. "
                         "For a single code use z[None, :].")
    if len(z) < 2:
        raise ValueError(f"{where}: need at least 2 latent codes to fit, got {len(z)}")
    bad = ~np.isfinite(z).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{where}: latents contain NaN or Inf in {int(bad.sum())} of {len(z)} rows (first: row "
            f"{int(np.flatnonzero(bad)[0])}). The model probably diverged during training; retrain it "
            "(lower TrainConfig.lr) or drop those rows before fitting."
        )
    return z


def _check_labels(labels: Any, n: int, where: str) -> np.ndarray | None:
    """None, or (N,) / (N, 1) non-negative integer ids -> int64 (N,), or a clear error."""
    if labels is None:
        return None
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:  # MedMNIST stores labels as (N, 1)
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{where}: labels must be (N,) with N = {n} (one per latent); got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.isfinite(labels).all() and np.all(np.mod(labels, 1) == 0)):
            raise ValueError(f"{where}: labels must be integers (class or cluster ids); got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0 (class or cluster ids); got minimum {labels.min()}")
    return labels


def _check_n(n: Any) -> int:
    """A positive integer number of samples, or a clear error."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer number of samples, got {n!r}")
    if n <= 0:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    return int(n)


def _check_scale(scale: float) -> float:
    """A finite temperature >= 0, or a clear error."""
    scale = float(scale)
    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale (the temperature multiplying the standard deviation) must be >= 0, got {scale}")
    return scale


def check_decoder(model: Any, latent_dim: int | None = None) -> None:
    """Raise a clear error unless ``model`` can decode codes of size ``latent_dim``.

    Raises:
        TypeError: ``model`` has no ``decode`` method (a supervised baseline, an encoder only, or a
            checkpoint dictionary instead of the model).
        ValueError: the model's ``cfg.latent_dim`` differs from ``latent_dim``.
    """
    if not callable(getattr(model, "decode", None)):
        raise TypeError(
            f"{type(model).__name__} has no decoder (no .decode(z) method): sampling needs an autoencoder. "
            "Pass a ContrastiveAutoencoder (e.g. the model returned by cae_lib.checkpoint.load_checkpoint), "
            "not a checkpoint dictionary, a supervised baseline or an encoder-only model."
        )
    model_dim = getattr(getattr(model, "cfg", None), "latent_dim", None)
    if latent_dim is not None and model_dim is not None and int(model_dim) != int(latent_dim):
        raise ValueError(
            f"latent dimension mismatch: the sampler was fitted on {latent_dim}-dimensional latents but the "
            f"model's latent_dim is {model_dim}. Fit the sampler on this model's latents "
            "(sampler.fit_from_model(model, data))."
        )


# --------------------------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------------------------
def images_to_uint8(x: torch.Tensor) -> np.ndarray:
    """x (n, C, H, W) floats in [0, 1] -> uint8 MedMNIST layout (n, H, W) or (n, H, W, C)."""
    arr = x.detach().cpu().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    arr = arr.permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


@torch.no_grad()
def decode_latents(model: nn.Module, z: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decode z (n, L) -> x (n, C, H, W) in [0, 1] on the CPU, in eval mode and without gradients.

    The model's train/eval mode is restored afterwards (BatchNorm in train mode would normalise the
    decoded batch with its own statistics: samples would depend on their batch neighbours).
    """
    check_decoder(model, int(np.shape(z)[1]))
    device = model_device(model)
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32)) if not isinstance(z, torch.Tensor) else z.float()
    was_training = model.training
    model.eval()
    try:
        out = [model.decode(chunk.to(device)).float().cpu() for chunk in zt.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).clamp_(0, 1)


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
def save_samples_npz(
    samples: Samples,
    path: str | os.PathLike,
    split: str = "train",
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    empty_other_splits: bool = False,
) -> Path:
    """Write samples as an .npz in MedMNIST layout, readable by ``cae_lib.data.load_dataset(path, split=split)``.

    The file holds ``{split}_images`` (uint8, (N, H, W) or (N, H, W, C)) and ``{split}_labels``
    (uint8 (N, 1)). By default only that split is written: loading another split raises a clear
    "no such split" error rather than silently returning generated images as test data. With
    ``empty_other_splits=True`` the other splits are written as empty arrays of the right shape,
    for tools that insist on all six MedMNIST keys. The file appears atomically.

    Args:
        labels: overrides ``samples.labels`` (needed when the sampler had no labels: -1 cannot be saved).
        class_names, metadata: stored alongside (e.g. the sampler and model configs).
    """
    labs = np.asarray(samples.labels if labels is None else labels).reshape(-1).astype(np.int64)
    if len(labs) != len(samples.images):
        raise ValueError(f"{len(samples.images)} images but {len(labs)} labels")
    if (labs < 0).any():
        raise ValueError(
            "some samples have no label (-1): fit the sampler with labels (true classes or cluster ids), "
            "or pass labels=... to save_samples_npz"
        )
    images = np.asarray(samples.images)
    splits = {split: (images, labs)}
    if empty_other_splits:
        for other in ("train", "val", "test"):
            if other != split:
                splits[other] = (np.zeros((0,) + images.shape[1:], np.uint8), np.zeros(0, np.int64))
    return save_npz(path, splits, class_names=class_names, metadata=metadata)
