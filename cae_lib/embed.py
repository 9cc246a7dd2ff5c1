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

from cae_lib.models import ContrastiveAutoencoder
from cae_lib.trainer import ImageBatches


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
    source = ImageBatches(data) if isinstance(data, np.ndarray) else ImageBatches.from_data(data)
    device = torch.device(device) if device is not None else next(model.parameters()).device
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


@torch.no_grad()
def reconstruct(model: ContrastiveAutoencoder, x: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) in [0, 1] -> reconstruction (B, C, H, W), in eval mode."""
    was_training = model.training
    model.eval()
    try:
        mu, _ = model.encode(x.to(next(model.parameters()).device))
        return model.decode(mu).cpu()
    finally:
        model.train(was_training)
