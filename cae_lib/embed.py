"""Latent extraction. Always in eval mode and without gradients.

BatchNorm in train mode normalises each batch with its own statistics, so the same image gets a
different code depending on its batch neighbours: a classic bug that silently ruins kNN, linear
and clustering evaluations. :func:`embed` therefore switches the model to ``eval()`` (and puts it
back as it was afterwards), and a test pins this.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from cae_lib.batches import ImageBatches, images_of
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.utils import model_device


@torch.no_grad()
def embed(
    model: ContrastiveAutoencoder,
    data: Any,
    batch_size: int = 512,
    space: str = "latent",
    device: str | torch.device | None = None,
) -> np.ndarray:
    """Encode every image of ``data`` (anything with ``.images``/``.labels``, or an ``(N, H, W[, C])`` uint8 array).

    Args:
        space: ``"latent"`` for z (the VAE's mean mu) or ``"projection"`` for the contrastive
            head's output h = g(z).

    Returns:
        float32 array (N, L).
    """
    if space not in ("latent", "projection"):
        raise ValueError(f"space must be 'latent' or 'projection', got {space!r}")
    check_images_fit(model, images_of(data))
    source = ImageBatches(data)
    device = torch.device(device) if device is not None else model_device(model)
    was_training = model.training
    model.eval()
    try:
        out = []
        for idx in torch.arange(len(source)).split(batch_size):
            x, _ = source.get_batch(idx)
            mu, _ = model.encode(x.to(device))
            out.append((model.projector(mu) if space == "projection" else mu).float().cpu())
        return torch.cat(out).numpy()
    finally:
        model.train(was_training)


def check_images_fit(model: Any, images: Any) -> None:
    """Raise ``ValueError`` when MedMNIST-layout ``images`` (N, H, W[, C]) do not fit ``model``'s input (channels, size)."""
    cfg = getattr(model, "cfg", None)
    shape = getattr(images, "shape", None)
    if cfg is None or shape is None or len(shape) not in (3, 4):
        return
    channels = 1 if len(shape) == 3 else int(shape[-1])
    kind = {1: "grey", 3: "RGB"}
    if (channels, int(shape[1])) != (cfg.in_channels, cfg.image_size):
        raise ValueError(
            f"the model takes {kind.get(cfg.in_channels, cfg.in_channels)} {cfg.image_size} x {cfg.image_size} images, but "
            f"these are {kind.get(channels, channels)} {shape[1]} x {shape[2]}. Use the data the model was trained on "
            "(a checkpoint's data: cae_lib.checkpoint.checkpoint_dataset), or train a model on this data."
        )


@torch.no_grad()
def reconstruct(model: ContrastiveAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) in [0, 1] -> reconstruction (B, C, H, W), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        mu, _ = model.encode(x.to(model_device(model)))
        return model.decode(mu).cpu()
    finally:
        model.train(was_training)
