"""The supervised objective (cross-entropy on one augmented view) and the settings of a supervised run."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from cae_lib.augment import ContrastiveAugment
from cae_lib.config import AugmentConfig, TrainConfig

BASELINES = ("resnet18", "same_backbone")


class ClassificationObjective:
    """Cross-entropy for the :class:`~cae_lib.trainer.Trainer`: ``(model, (x, y), generator) -> (loss, logs)``.

    Args:
        augment: if given, each training batch is replaced by ONE random view of itself (classic
            data augmentation, unlike the two views of the contrastive loss). Never applied in
            eval mode, so validation is deterministic.

    ``logs`` holds ``"loss"`` (mean cross-entropy) and ``"acc"`` (fraction of the batch right).
    """

    uses_every_parameter = True  # every weight of a classifier feeds its logits (DDP needs to know)

    def __init__(self, augment: ContrastiveAugment | None = None) -> None:
        self.augment = augment

    def __call__(self, model: nn.Module, batch: Sequence[torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch[0], batch[1]
        if self.augment is not None and model.training:
            x = self.augment(x, generator)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}


@dataclass
class SupervisedConfig:
    """Settings of one supervised run. Defaults suit the same-backbone model; use
    :meth:`for_model` to get the ResNet-18 defaults.

    Measured with PneumoniaMNIST-sized data (4708 grey 28-px training images, 524 validation)
    on 2 CPU cores (torch 2.14 CPU, 2 threads), seconds per epoch (training; the validation pass
    adds ~2 s for ResNet-18, <0.5 s for the small model):

    * ResNet-18, batch 64: 39 s on an idle machine (72 s with 1 thread), 70-300 s when the two
      cores are shared with other busy jobs (thread oversubscription hurts a lot);
    * same backbone (width 32, L = 32), batch 64 to 256: 0.9 s idle, 6-30 s shared.

    Hence ``for_model("resnet18")`` = 3 epochs (~2 min on 2 idle cores, ~4 min on one core or a
    busy machine; we saw 14 min with three other jobs running) and the same-backbone default =
    15 epochs (~15 s idle, ~3 min at worst).
    ResNet-18 keeps 28x28 feature maps in its first stage, so it is memory-hungry: batch 64
    peaks at about 1.5 GB of process memory (batch 128: 2.0 GB, batch 256: 2.3 GB); the small
    model peaks below 0.9 GB. On PneumoniaMNIST the same-backbone model picked epoch 12 (of 30,
    so the 15-epoch default gives the same model): test accuracy 0.857, balanced accuracy 0.811,
    AUC 0.970 (majority floor 0.625); ResNet-18 *from scratch* with the 3-epoch default picked
    epoch 3: test accuracy 0.921, balanced accuracy 0.912, AUC 0.977 (seed 0, one run each).

    On a GPU use more epochs (the MedMNIST v2 benchmark trains ResNet-18 for 100 epochs).

    Attributes:
        epochs: passes over the (labelled) training set.
        batch_size: images per optimisation step.
        lr: Adam learning rate (1e-3 suits fine-tuning the pretrained ResNet; the small encoder
            trains well with 3e-3).
        weight_decay: Adam L2 penalty.
        seed: seeds the model initialisation (in :func:`run_baseline`), the shuffling, the
            augmentation and the label subset.
        augment_strength: strength of the single augmented view (see
            :class:`~cae_lib.config.AugmentConfig`); 0 switches augmentation off.
        hflip: allow horizontal flips (off: chest X-rays are not left-right symmetric).
        label_fraction: fraction of the training labels used (a class-stratified random subset),
            to compare with the CAE in the low-label regime. Ignored when ``label_indices`` is given.
        early_stopping_patience: stop after this many epochs without a better validation accuracy.
        grad_clip: max gradient norm (None: no clipping).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        eval_batch_size: batch size for validation / test predictions.
    """

    epochs: int = 15
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment_strength: float = 0.5
    hflip: bool = False
    label_fraction: float = 1.0
    early_stopping_patience: int | None = None
    grad_clip: float | None = 5.0
    device: str = "auto"
    eval_batch_size: int = 256

    def validate(self) -> "SupervisedConfig":
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}")
        if not 0 < self.label_fraction <= 1:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if self.augment_strength < 0:
            raise ValueError(f"augment_strength must be >= 0, got {self.augment_strength}")
        return self

    @classmethod
    def for_model(cls, kind: str, **overrides: Any) -> "SupervisedConfig":
        """CPU-friendly defaults: ``"resnet18"`` 3 epochs, batch 64, lr 1e-3; ``"same_backbone"`` 15 epochs, batch 128, lr 3e-3."""
        presets = {"resnet18": dict(epochs=3, batch_size=64, lr=1e-3), "same_backbone": dict(epochs=15, batch_size=128, lr=3e-3)}
        if kind not in presets:
            raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}")
        return cls(**{**presets[kind], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def train_config(self) -> TrainConfig:
        """The :class:`~cae_lib.config.TrainConfig` handed to the Trainer (which stops early on validation accuracy)."""
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            seed=self.seed, device=self.device, early_stopping_patience=self.early_stopping_patience,
            grad_clip=self.grad_clip, schedule="constant", precision="fp32",  # the baselines' protocol, unchanged
        )

    def augment(self) -> ContrastiveAugment | None:
        if self.augment_strength == 0:
            return None
        return ContrastiveAugment(AugmentConfig(strength=self.augment_strength, hflip=self.hflip))
