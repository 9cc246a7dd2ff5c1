"""Configuration dataclasses.

Every default of the toolkit lives here, in one place (minGPT style). A :class:`CAEConfig` is
saved as JSON next to every checkpoint and every results file, so each figure and number can be
traced back to the exact settings that produced it.

The loss weights make every ablation of the paper one config change:

=====================  ===============  ===================  =========  =========
model                  ``variant``      ``recon_weight``     ``contrastive_weight``  ``kl_weight``
=====================  ===============  ===================  =========  =========
plain AE               ``"ae"``         1                    0          0
contrastive only       ``"ae"``         0                    1          0
CAE (the default)      ``"ae"``         1                    1          0
VAE                    ``"vae"``        1                    0          1
contrastive VAE        ``"vae"``        1                    1          1
=====================  ===============  ===================  =========  =========
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cae_lib.files import write_json

VARIANTS = ("ae", "vae")
IMAGE_SIZES = (28, 64, 128, 224)
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
SCHEDULES = ("cosine", "constant")
RECON_LOSSES = ("mse", "bce")


@dataclass
class ModelConfig:
    """Architecture of the encoder / decoder / projection head.

    Attributes:
        in_channels: 1 (grey) or 3 (RGB).
        image_size: 28, 64, 128 or 224 (square images; the MedMNIST+ sizes).
        latent_dim: size L of the latent code z.
        width: channels of the first convolution; later blocks use 2x and 4x this.
        variant: ``"ae"`` (deterministic) or ``"vae"`` (mu, log-variance, reparameterisation).
        proj_hidden_mult: the projection head is L -> mult*L -> mult*L -> L (the authors used 2).
    """

    in_channels: int = 1
    image_size: int = 28
    latent_dim: int = 32
    width: int = 16
    variant: str = "ae"
    proj_hidden_mult: int = 2

    def validate(self) -> None:
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; choose one of {VARIANTS}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {self.in_channels}")
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size must be one of {IMAGE_SIZES} (the MedMNIST sizes), got {self.image_size}")
        if self.latent_dim < 1 or self.width < 1:
            raise ValueError("latent_dim and width must be positive")


@dataclass
class LossConfig:
    """Weights of the combined objective ``recon_weight*recon + contrastive_weight*ntxent + kl_weight*KL``.

    Attributes:
        recon: ``"mse"`` or ``"bce"`` (pixel-wise, summed over pixels, averaged over the batch
            is *not* used: both are averaged per pixel so the weights stay comparable).
        recon_weight, contrastive_weight: the balance of the two terms; the paper's equal weights
            (default 1 and 1) won the sweep's stage 7.
        temperature: NT-Xent temperature tau (SimCLR), > 0.01; default 0.2 (the sweep's stage 2).
        recon_views: how many of each image's two views are reconstructed: 2 (both, the default)
            or 1 (the first only, a step about a quarter cheaper; stage 6). A saved config without
            this key means 2.

    Why each default: ``benchmarks/results/sweep_defaults.md`` (validation splits only).
    """

    recon: str = "mse"
    recon_weight: float = 1.0
    contrastive_weight: float = 1.0
    kl_weight: float = 0.0
    temperature: float = 0.2
    recon_views: int = 2

    def validate(self) -> None:
        if self.recon_views not in (1, 2):
            raise ValueError(f"recon_views must be 1 (reconstruct the first view) or 2 (both views), got {self.recon_views}")
        if self.recon not in RECON_LOSSES:
            raise ValueError(f"unknown reconstruction loss {self.recon!r}; choose one of {RECON_LOSSES}")
        if min(self.recon_weight, self.contrastive_weight, self.kl_weight) < 0:
            raise ValueError("loss weights must be >= 0")
        if self.recon_weight + self.contrastive_weight == 0:
            raise ValueError("recon_weight and contrastive_weight are both 0: nothing to learn")


@dataclass
class AugmentConfig:
    """Strength of the two-view contrastive augmentation (see :mod:`cae_lib.augment`).

    ``strength`` scales every magnitude at once: 0 gives identical views, 1 gives the magnitudes
    listed below, 2 is aggressive; the default is 1.5. ``hflip``/``vflip`` are off because chest
    X-rays are not left-right symmetric (the heart is on the left); turn them on for cells or skin
    lesions. ``gradient`` adds a linear brightness ramp in a random direction (uneven exposure); a
    saved config without this key means 0. ``min_scale`` / ``max_scale`` bound the random zoom:
    the view shows a window ``scale`` times the image's size, so below 1 zooms in (a crop) and
    above 1 zooms out (off by default; try it where the framing varies with something other than
    the label).

    Why each default: ``benchmarks/results/sweep_defaults.md`` (validation splits only).
    """

    strength: float = 1.5
    max_rotation: float = 10.0  # degrees at strength 1
    min_scale: float = 0.8  # random zoom: window scale in [min_scale, max_scale] at strength 1 (< 1 zooms in)
    max_scale: float = 1.0  # > 1 also zooms out (a wider field of view)
    max_shift: float = 0.08  # fraction of the image at strength 1
    brightness: float = 0.2
    contrast: float = 0.2
    gradient: float = 0.2  # linear brightness ramp in a random direction, up to +-gradient at strength 1
    noise_std: float = 0.03
    blur_prob: float = 0.3
    hflip: bool = False
    vflip: bool = False

    def validate(self) -> None:
        if self.strength < 0:
            raise ValueError(f"augmentation strength must be >= 0, got {self.strength}")
        if not 0 < self.min_scale <= self.max_scale:
            raise ValueError(
                f"the zoom range must satisfy 0 < min_scale <= max_scale (below 1 zooms in, above 1 zooms out); "
                f"got min_scale={self.min_scale}, max_scale={self.max_scale}"
            )


@dataclass
class TrainConfig:
    """Optimisation settings.

    ``epochs=None`` (the default) means "enough epochs for ``steps`` optimisation steps" (9
    epochs on PneumoniaMNIST, 80 on BreastMNIST), so a small dataset gets the same budget as a
    large one. The learning rate follows ``schedule``: ``"cosine"`` (the default) warms up over
    ``warmup_fraction`` of the steps, then decays to 0 along a half cosine (:mod:`cae_lib.schedule`);
    ``"constant"`` keeps ``lr`` (what a saved config without a ``schedule`` key means). Why each
    default: ``benchmarks/results/sweep_defaults.md`` (validation splits only).

    The run machinery (:class:`cae_lib.run_trainer.RunTrainer`) reads the rest: ``ema_decay`` (end
    with a moving average of the weights over about ``1 / (1 - ema_decay)`` steps), ``precision``
    (``"auto"``: bf16 autocast where the processor computes bf16 natively, else fp32; the
    precision that ran is written back), ``channels_last``, ``sync_batchnorm`` and ``world_size``.
    """

    epochs: int | None = None
    steps: int = 160
    batch_size: int = 256
    lr: float = 3e-3
    weight_decay: float = 1e-5
    schedule: str = "cosine"
    warmup_fraction: float = 0.1
    seed: int = 0
    device: str = "auto"
    early_stopping_patience: int | None = None
    grad_clip: float | None = 5.0
    ema_decay: float | None = None  # keep a moving average of the weights (cae_lib.weight_average) and end with it; None: the last step's weights
    precision: str = "auto"  # "auto", "fp32", "bf16" (CUDA, or a CPU with bf16 support) or "fp16" (CUDA only)
    channels_last: bool = True  # NHWC memory layout for the convolutions
    sync_batchnorm: bool = True  # under DDP: BatchNorm statistics over the global batch
    world_size: int = 1  # processes that trained together; set by the trainer, recorded for tracing

    def validate(self) -> None:
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown learning-rate schedule {self.schedule!r}; choose one of {SCHEDULES}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in (0, 1) or None, got {self.ema_decay}; 0.95 averages about the last 20 steps")

    def resolve_epochs(self, n_images: int) -> int:
        """Number of epochs to run on ``n_images`` training images (see the class docstring)."""
        if self.epochs is not None:
            if self.epochs < 1:
                raise ValueError(f"epochs must be >= 1, got {self.epochs}")
            return int(self.epochs)
        full_batches = max(1, n_images // self.batch_size)
        return max(1, -(-self.steps // full_batches))  # ceil


#: What a saved config written before a setting existed meant by it (so old checkpoints keep their meaning).
OLD_TRAIN_DEFAULTS = {"schedule": "constant", "precision": "fp32"}
OLD_AUGMENT_DEFAULTS = {"gradient": 0.0, "max_scale": 1.0}
OLD_LOSS_DEFAULTS = {"recon_views": 2}


def _without_amp(train: dict[str, Any]) -> dict[str, Any]:
    """A saved ``train`` section without the retired ``amp`` flag: ``amp: true`` meant fp16 mixed precision."""
    train = dict(train)
    if train.pop("amp", False) and train.get("precision") in ("auto", "fp32"):
        train["precision"] = "fp16"
    return train


@dataclass
class CAEConfig:
    """Everything needed to reproduce one training run."""

    dataset: str = "pneumoniamnist"
    size: int = 28
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)

    def validate(self) -> "CAEConfig":
        self.model.validate()
        self.loss.validate()
        self.augment.validate()
        self.train.validate()
        if self.model.variant == "ae" and self.loss.kl_weight > 0:
            raise ValueError("kl_weight > 0 needs variant='vae' (the plain AE has no KL term)")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def model_name(self) -> str:
        """Which ablation this is: "CAE", "AE", "contrastive-only", "VAE" or "contrastive VAE"."""
        contrastive, recon = self.loss.contrastive_weight > 0, self.loss.recon_weight > 0
        if self.model.variant == "vae":
            return "contrastive VAE" if contrastive else "VAE"
        return "CAE" if contrastive and recon else ("contrastive-only" if contrastive else "AE")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "CAEConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}; valid keys are {sorted(known)}")
        return cls(
            dataset=d.get("dataset", cls.dataset),
            size=d.get("size", cls.size),
            model=ModelConfig(**d.get("model", {})),
            loss=LossConfig(**{**OLD_LOSS_DEFAULTS, **d["loss"]}) if "loss" in d else LossConfig(),
            augment=AugmentConfig(**{**OLD_AUGMENT_DEFAULTS, **d["augment"]}) if "augment" in d else AugmentConfig(),
            train=TrainConfig(**_without_amp({**OLD_TRAIN_DEFAULTS, **d["train"]})) if "train" in d else TrainConfig(),
        )

    def to_json(self, path: str | Path) -> Path:
        return write_json(path, self.to_dict())

    @classmethod
    def from_json(cls, path: str | Path) -> "CAEConfig":
        return cls.from_dict(json.loads(Path(path).read_text()))


def flat_settings(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """A nested settings dict with dotted keys: ``{"train": {"lr": 1}}`` -> ``{"train.lr": 1}``."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        out.update(flat_settings(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def preset(name: str, **overrides: Any) -> CAEConfig:
    """Return the config of a named ablation: ``"cae"``, ``"ae"``, ``"contrastive"``, ``"vae"``, ``"cvae"``."""
    presets = {
        "cae": dict(variant="ae", recon_weight=1.0, contrastive_weight=1.0, kl_weight=0.0),
        "ae": dict(variant="ae", recon_weight=1.0, contrastive_weight=0.0, kl_weight=0.0),
        "contrastive": dict(variant="ae", recon_weight=0.0, contrastive_weight=1.0, kl_weight=0.0),
        "vae": dict(variant="vae", recon_weight=1.0, contrastive_weight=0.0, kl_weight=1.0),
        "cvae": dict(variant="vae", recon_weight=1.0, contrastive_weight=1.0, kl_weight=1.0),
    }
    if name not in presets:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(presets)}")
    p = presets[name]
    cfg = CAEConfig(**{k: v for k, v in overrides.items() if k in ("dataset", "size")})
    cfg.model.variant = p["variant"]
    cfg.loss.recon_weight = p["recon_weight"]
    cfg.loss.contrastive_weight = p["contrastive_weight"]
    cfg.loss.kl_weight = p["kl_weight"]
    return cfg
