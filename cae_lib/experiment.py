"""High-level recipes: train a CAE from a config, load the shipped model, or resume a run.

These glue the small modules together in the way the CLI, the main job and the notebooks all
use them, so that there is one code path for "train the default model".
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any


from cae_lib.checkpoint import CheckpointError, load_checkpoint, read_checkpoint, save_checkpoint
from cae_lib.config import CAEConfig
from cae_lib.data import load_dataset
from cae_lib.losses import CAEObjective
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.trainer import ImageBatches, Trainer
from cae_lib.utils import peak_memory_mb, seed_everything

PRETRAINED_DIR = Path(__file__).resolve().parent / "pretrained"


def build_trainer(config: CAEConfig, train_data: Any, val_data: Any | None = None, progress: bool = True, callbacks=()) -> Trainer:
    """A :class:`Trainer` for the CAE described by ``config`` on ``train_data`` (an ImageData)."""
    config.validate()
    seed_everything(config.train.seed)
    model = ContrastiveAutoencoder(config.model)
    return Trainer(
        model,
        CAEObjective.from_config(config),
        ImageBatches.from_data(train_data),
        config.train,
        val_data=ImageBatches.from_data(val_data) if val_data is not None else None,
        callbacks=callbacks,
        progress=progress,
    )


def config_for_data(config: CAEConfig, data: Any) -> CAEConfig:
    """Set the channel count and dataset name of ``config`` from the loaded data."""
    config.model.in_channels = int(data.n_channels)
    config.model.image_size = int(data.images.shape[1])
    config.dataset = data.name
    return config


def train_cae(
    config: CAEConfig,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    progress: bool = True,
    resume: bool = False,
    checkpoint_every_epoch: bool = True,
) -> tuple[ContrastiveAutoencoder, list[dict[str, float]], Path | None]:
    """Train the CAE described by ``config`` on its dataset's train split (val split for validation).

    Args:
        out: a folder; the checkpoint goes to ``out/model.pt`` with ``out/model.json`` beside it.
            With ``checkpoint_every_epoch`` it is rewritten (atomically) after every epoch, so an
            interrupted run can continue with ``resume=True``.
        resume: continue from ``out/model.pt`` if it exists and has the same config.

    Returns:
        ``(model in eval mode, history, checkpoint path or None)``.
    """
    train = load_dataset(config.dataset, split="train", size=config.size, data_dir=data_dir)
    val = load_dataset(config.dataset, split="val", size=config.size, data_dir=data_dir)
    config = config_for_data(config, train)
    path = Path(out) / "model.pt" if out is not None else None
    start = time.perf_counter()

    def save(trainer: Trainer, logs: dict[str, float]) -> None:
        if path is not None:
            extra = {"train_seconds": round(time.perf_counter() - start + already, 2), "peak_memory_mb": round(peak_memory_mb(), 1)}
            save_checkpoint(path, trainer.model, config, trainer.state.history, trainer.state_dict(), extra)

    trainer = build_trainer(config, train, val, progress=progress, callbacks=[save] if checkpoint_every_epoch else [])
    already = 0.0
    if resume and path is not None and path.exists():
        payload = read_checkpoint(path)
        stored = CAEConfig.from_dict(payload["config"])
        if stored.to_dict() != config.to_dict():
            raise CheckpointError(f"cannot resume {path}: it was trained with a different config; use another --out folder")
        trainer.model.load_state_dict(payload["model_state"])
        if payload.get("trainer_state"):
            trainer.load_state_dict(payload["trainer_state"])
        already = float(payload.get("extra", {}).get("train_seconds", 0.0))
    history = trainer.fit()
    if path is not None and not checkpoint_every_epoch:
        save(trainer, {})
    return trainer.model.eval(), history, path


def pretrained_path(dataset: str, name: str = "cae") -> Path:
    """Where the shipped checkpoint for ``dataset`` lives (it may not exist)."""
    return PRETRAINED_DIR / f"{dataset.lower()}_{name}.pt"


def find_pretrained(config: CAEConfig, name: str = "cae") -> Path | None:
    """The shipped checkpoint whose stored config equals ``config`` (ignoring the device), else None."""
    path = pretrained_path(config.dataset, name)
    if not path.exists():
        return None
    try:
        stored = CAEConfig.from_dict(read_checkpoint(path)["config"])
    except CheckpointError:
        return None
    return path if same_settings(stored, config) else None


def same_settings(a: CAEConfig, b: CAEConfig) -> bool:
    """Whether two configs describe the same training run (the device it ran on does not count)."""
    da, db = a.to_dict(), b.to_dict()
    da["train"].pop("device"), db["train"].pop("device")
    return da == db


def load_or_train(
    config: CAEConfig,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> tuple[ContrastiveAutoencoder, list[dict[str, float]], str]:
    """"Load the pretrained checkpoint if it exists, else train" (UvA tutorial style).

    Looks first for a shipped checkpoint with exactly this config, then for ``out/model.pt`` with
    this config. Returns ``(model, history, where)`` with ``where`` saying which one was used.
    The channel count and dataset name are first taken from the data (:func:`config_for_data`).
    """
    config = config_for_data(config, load_dataset(config.dataset, split="val", size=config.size, data_dir=data_dir))
    if not retrain:
        candidates = [find_pretrained(config)]
        if out is not None and (Path(out) / "model.pt").exists():
            candidates.append(Path(out) / "model.pt")
        for cand in candidates:
            if cand is None:
                continue
            model, stored, payload = load_checkpoint(cand, expected_dataset=config.dataset)
            if same_settings(stored, config):
                return model, payload["history"], f"loaded {cand}"
    model, history, path = train_cae(config, out=out, data_dir=data_dir, progress=progress)
    return model, history, f"trained, saved to {path}" if path else "trained (not saved)"
