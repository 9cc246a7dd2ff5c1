"""Same backbone: the CAE encoder with a linear head, trained with labels (the architecture's fair ceiling)."""

from __future__ import annotations

import torch
import torch.nn as nn

from cae_lib.config import ModelConfig
from cae_lib.models import Encoder

LABEL_SAME_BACKBONE = "Same-backbone supervised (CAE encoder + linear)"


class SameBackboneClassifier(nn.Module):
    """The CAE encoder (:class:`~cae_lib.models.Encoder`) followed by ``Linear(L, K)``, trained with labels.

    The fair ceiling for the architecture: the same convolutions, the same latent size L and the
    same input as the CAE, but supervised. For the VAE variant the head reads ``mu``.

    To fine-tune a trained CAE instead of starting from random weights, copy its encoder first:
    ``clf.encoder.load_state_dict(cae.encoder.state_dict())``.

    Args:
        model_cfg: the CAE's :class:`~cae_lib.config.ModelConfig` (its ``in_channels`` must match the data).
        n_classes: K.

    ``forward(x: (B, C, H, W) in [0, 1]) -> logits (B, K)``.

    Example:
        >>> clf = SameBackboneClassifier(ModelConfig(latent_dim=8, width=4), n_classes=3)
        >>> clf(torch.rand(5, 1, 28, 28)).shape
        torch.Size([5, 3])
    """

    def __init__(self, model_cfg: ModelConfig, n_classes: int) -> None:
        super().__init__()
        model_cfg.validate()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.cfg = model_cfg
        self.encoder = Encoder(model_cfg)
        self.head = nn.Linear(model_cfg.latent_dim, n_classes)
        self.label = LABEL_SAME_BACKBONE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encoder(x)
        return self.head(mu)
