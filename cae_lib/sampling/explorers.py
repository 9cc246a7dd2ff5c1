"""Explorers: encode -> move in latent space -> decode.

* :func:`latent_path`: the codes on a straight line (or slerp) between two codes.
* :class:`Interpolator`: decode the path between the codes of two images.
* :class:`LatentTraversal`: walk one code along one raw latent dimension or one principal component.

Images are given one at a time: a torch tensor (C, H, W) / (1, C, H, W) in [0, 1], or one NumPy
image in MedMNIST layout (H, W) / (H, W, C), e.g. ``data.images[i]``. uint8 is scaled by 1/255.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn

from cae_lib.batches import images_to_float
from cae_lib.embed import embed
from cae_lib.sampling.samples import (
    _check_latents,
    check_decoder,
    decode_latents,
    images_to_uint8,
)
from cae_lib.utils import model_device


def _to_model_input(x: Any, model: nn.Module, what: str) -> torch.Tensor:
    """One image -> (1, C, H, W) float in [0, 1].

    Torch tensors are channels-first, (C, H, W) or (1, C, H, W); NumPy arrays are in MedMNIST
    layout, (H, W) or (H, W, C) (e.g. ``data.images[i]``). uint8 is scaled by 1/255
    (:func:`cae_lib.batches.images_to_float` does the conversion).
    """
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dim() == 3:
            t = t.unsqueeze(0)
        if t.dim() != 4 or t.shape[0] != 1:
            raise ValueError(f"{what}: expected one image, (C, H, W) or (1, C, H, W); got shape {tuple(t.shape)}")
        t = images_to_float(t.permute(0, 2, 3, 1))  # (1, H, W, C) MedMNIST layout in, (1, C, H, W) out
    else:
        arr = np.asarray(x)
        if arr.ndim not in (2, 3):
            raise ValueError(f"{what}: a NumPy image must be (H, W) or (H, W, C) (MedMNIST layout); got {arr.shape}")
        t = images_to_float(arr[None])  # a batch of one
    channels = getattr(getattr(model, "cfg", None), "in_channels", None)
    if channels is not None and t.shape[1] != channels:
        raise ValueError(f"{what}: the image has {t.shape[1]} channel(s) but the model expects {channels}")
    return t


@torch.no_grad()
def _encode_one(model: nn.Module, x: Any, what: str) -> np.ndarray:
    """Encode one image in eval mode -> its code (L,) (the VAE's mean)."""
    if not callable(getattr(model, "encode", None)):
        raise TypeError(f"{type(model).__name__} has no .encode(x) method; pass a ContrastiveAutoencoder")
    t = _to_model_input(x, model, what)
    was_training = model.training
    model.eval()
    try:
        mu, _ = model.encode(t.to(model_device(model)))
    finally:
        model.train(was_training)
    return mu[0].float().cpu().numpy().astype(np.float64)


def latent_path(z_a: np.ndarray, z_b: np.ndarray, steps: int = 8, slerp: bool = False) -> np.ndarray:
    """``steps`` codes from z_a to z_b inclusive, (steps, L).

    Linear: ``(1 - t) z_a + t z_b``. Slerp (spherical, Shoemake 1985) keeps the norm varying smoothly
    along the great circle; it suits the VAE prior, whose mass lies on a shell of radius ~ sqrt(L),
    where a straight line would cut through the low-density centre.
    """
    if int(steps) < 2:
        raise ValueError(f"steps must be >= 2 (the two end points), got {steps}")
    z_a, z_b = np.asarray(z_a, dtype=np.float64), np.asarray(z_b, dtype=np.float64)
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    if slerp:
        na, nb = np.linalg.norm(z_a), np.linalg.norm(z_b)
        if na > 1e-12 and nb > 1e-12:
            omega = math.acos(float(np.clip(z_a @ z_b / (na * nb), -1.0, 1.0)))
            if omega > 1e-6:
                return (np.sin((1 - t) * omega) * z_a + np.sin(t * omega) * z_b) / math.sin(omega)
    return (1 - t) * z_a + t * z_b


class Interpolator:
    """Decode the path between the codes of two images: does the model morph one into the other
    through plausible images (a smooth latent space) or through garbage?

    Images: a torch tensor (C, H, W) / (1, C, H, W) in [0, 1], or one NumPy image in MedMNIST
    layout (H, W) / (H, W, C), e.g. ``data.images[i]``.
    """

    def interpolate(self, model: nn.Module, x_a: Any, x_b: Any, steps: int = 8, slerp: bool = False) -> np.ndarray:
        """-> uint8 images (steps, H, W[, C]); the first decodes x_a's code, the last x_b's."""
        check_decoder(model)
        z = latent_path(_encode_one(model, x_a, "x_a"), _encode_one(model, x_b, "x_b"), steps, slerp)
        self.last_z_ = z.astype(np.float32)
        return images_to_uint8(decode_latents(model, self.last_z_))


class LatentTraversal:
    """Move one code along one direction and decode: what does each direction of the latent space do?

    Directions are raw latent dimensions (``basis="raw"``) or principal components of the training
    latents (``basis="pca"``, sorted by explained variance). A plain AE has no reason to align
    meaningful factors with its coordinate axes, so raw dimensions often change several things at
    once; the principal components are far more meaningful there. Steps are multiples of the
    standard deviation of the training latents along the chosen direction.

    Attributes (after ``fit``): ``mean_`` (L,), ``sd_raw_`` (L,), ``components_`` (L, L) rows =
    principal directions, ``sd_pca_`` (L,), ``explained_variance_ratio_`` (L,).
    """

    def __init__(self) -> None:
        self.latent_dim: int | None = None

    def fit(self, z: np.ndarray, labels: np.ndarray | None = None) -> "LatentTraversal":
        """Fit on latents ``z (N, L)``; labels are accepted for interface symmetry and ignored."""
        z = _check_latents(z, "LatentTraversal.fit")
        self.latent_dim = z.shape[1]
        self.mean_ = z.mean(axis=0)
        self.sd_raw_ = z.std(axis=0, ddof=1)
        _, s, vt = np.linalg.svd(z - self.mean_, full_matrices=False)
        var = s**2 / (len(z) - 1)
        self.components_ = np.zeros((self.latent_dim, self.latent_dim))
        self.components_[: len(vt)] = vt
        self.sd_pca_ = np.zeros(self.latent_dim)
        self.sd_pca_[: len(var)] = np.sqrt(var)
        total = var.sum()
        self.explained_variance_ratio_ = self.sd_pca_**2 / total if total > 0 else np.zeros(self.latent_dim)
        return self

    def fit_from_model(self, model: nn.Module, data: Any, batch_size: int = 512) -> "LatentTraversal":
        """Embed ``data`` (eval mode) and fit on the codes."""
        return self.fit(embed(model, data, batch_size=batch_size, space="latent"))

    def latents(
        self, z_start: np.ndarray | None, direction: int, values: Sequence[float] = (-2, -1, 0, 1, 2), basis: str = "pca"
    ) -> np.ndarray:
        """Codes ``z_start + v * sd_d * u_d`` for each v in ``values``, (len(values), L).

        ``z_start=None`` starts from the mean training code.
        """
        if self.latent_dim is None:
            raise RuntimeError("LatentTraversal is not fitted yet: call .fit(z) (or .fit_from_model(model, data)) first.")
        if basis not in ("pca", "raw"):
            raise ValueError(f"basis must be 'pca' or 'raw', got {basis!r}")
        valid = isinstance(direction, (int, np.integer)) and not isinstance(direction, bool)
        if not valid or not 0 <= direction < self.latent_dim:
            raise ValueError(f"direction must be an integer in 0..{self.latent_dim - 1}, got {direction!r}")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError("values is empty: give the multiples of the standard deviation to visit, e.g. (-2, 0, 2)")
        start = self.mean_ if z_start is None else np.asarray(z_start, dtype=np.float64).reshape(-1)
        if start.shape != (self.latent_dim,):
            raise ValueError(f"z_start must have {self.latent_dim} values, got shape {np.shape(z_start)}")
        if basis == "pca":
            u, sd = self.components_[direction], self.sd_pca_[direction]
        else:
            u, sd = np.eye(self.latent_dim)[direction], self.sd_raw_[direction]
        return start[None, :] + values[:, None] * sd * u[None, :]

    def traverse(
        self, model: nn.Module, start: Any = None, direction: int = 0,
        values: Sequence[float] = (-2, -1, 0, 1, 2), basis: str = "pca",
    ) -> np.ndarray:
        """Decode a traversal -> uint8 images (len(values), H, W[, C]).

        Args:
            start: an image (see :class:`Interpolator`), a code z (L,), or ``None`` (the mean code).
                A 1-D array or tensor of length L is taken as a code.
            direction: index of the dimension or principal component (0 = largest variance).
            values: multiples of the standard deviation along that direction.
        """
        if self.latent_dim is None:
            raise RuntimeError("LatentTraversal is not fitted yet: call .fit(z) (or .fit_from_model(model, data)) first.")
        check_decoder(model, self.latent_dim)
        if isinstance(start, torch.Tensor):
            start = start.detach().cpu()
        if start is None or np.ndim(start) == 1 or np.shape(start) == (1, self.latent_dim):
            z_start = None if start is None else np.asarray(start, dtype=np.float64).reshape(-1)
        else:
            z_start = _encode_one(model, start, "start")
        z = self.latents(z_start, direction, values, basis)
        self.last_z_ = z.astype(np.float32)
        return images_to_uint8(decode_latents(model, self.last_z_))
