"""The configuration of one run: :class:`CAEConfig`, saved as JSON next to every checkpoint and result.

Each part's settings live beside the code that reads them, as minGPT keeps a model's defaults with
the model: :class:`~cae_lib.models.ModelConfig`, :class:`~cae_lib.augment.AugmentConfig`,
:class:`~cae_lib.losses.LossConfig` and :class:`~cae_lib.trainer.TrainConfig`. A
:class:`CAEConfig` puts the four together with the dataset, so each figure and number can be
traced back to the exact settings that produced it, and :func:`preset` names the paper's models.
All of them import from here too.

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

from cae_lib.augment import AugmentConfig
from cae_lib.files import write_json
from cae_lib.losses import RECON_LOSSES, LossConfig
from cae_lib.models import IMAGE_SIZES, VARIANTS, ModelConfig
from cae_lib.trainer import PRECISIONS, SCHEDULES, TrainConfig

__all__ = ["IMAGE_SIZES", "PRECISIONS", "RECON_LOSSES", "SCHEDULES", "VARIANTS", "AugmentConfig", "CAEConfig", "LossConfig",
           "ModelConfig", "TrainConfig", "flat_settings", "preset"]


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
