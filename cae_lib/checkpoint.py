"""Saving and loading checkpoints: weights + config + history + library version, written atomically.

A checkpoint ``run/model.pt`` always has its config beside it as ``run/model.json``, so anyone can
read the settings without loading PyTorch. Loading rebuilds the model from the stored config and
refuses, with a clear message, a checkpoint whose architecture or dataset does not match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from cae_lib import __version__
from cae_lib.config import CAEConfig
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.utils import atomic_path, write_json

FORMAT = "cae-lib-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked (missing, corrupt, wrong model or dataset)."""


def save_checkpoint(
    path: str | Path,
    model: ContrastiveAutoencoder,
    config: CAEConfig,
    history: list[dict[str, float]] | None = None,
    trainer_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Atomically write ``path`` (a ``.pt`` file) and its config ``path.with_suffix('.json')``.

    ``trainer_state`` (optimizer and loop state, see :meth:`Trainer.state_dict`) makes the run
    resumable; leave it out for small release checkpoints.
    """
    path = Path(path)
    payload = {
        "format": FORMAT,
        "version": __version__,
        "config": config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or [],
        "trainer_state": trainer_state,
        "extra": extra or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    write_json(path.with_suffix(".json"), {"format": FORMAT, "version": __version__, "config": config.to_dict(), "extra": extra or {}})
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw checkpoint dictionary, with clear errors for missing or corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `python -m cae_lib train --out DIR`")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # truncated zip, pickle error, ...
        raise CheckpointError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc}); delete it and train again") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a cae-lib checkpoint (expected format {FORMAT!r})")
    return payload


def load_checkpoint(
    path: str | Path,
    expected_dataset: str | None = None,
    expected_config: CAEConfig | None = None,
    device: str | torch.device = "cpu",
) -> tuple[ContrastiveAutoencoder, CAEConfig, dict[str, Any]]:
    """Rebuild the model stored at ``path``.

    Args:
        expected_dataset: if given, the checkpoint must have been trained on this dataset.
        expected_config: if given, the checkpoint's model architecture must equal this one.

    Returns:
        ``(model in eval mode, config, raw payload)``.

    Raises:
        CheckpointError: missing/corrupt file, another dataset, or another architecture.
    """
    payload = read_checkpoint(path)
    config = CAEConfig.from_dict(payload["config"])
    if expected_dataset is not None and config.dataset.lower() != expected_dataset.lower():
        raise CheckpointError(
            f"checkpoint {path} was trained on {config.dataset!r}, not {expected_dataset!r}; "
            f"pass a checkpoint for {expected_dataset!r} or train one with "
            f"`python -m cae_lib train --dataset {expected_dataset}`"
        )
    if expected_config is not None and expected_config.model != config.model:
        raise CheckpointError(
            f"checkpoint {path} has architecture {config.model}, but {expected_config.model} was requested; "
            "use the checkpoint's own config (CAEConfig.from_json) or train a new model"
        )
    model = ContrastiveAutoencoder(config.model)
    try:
        model.load_state_dict(payload["model_state"])
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint {path} does not match its own config's architecture: {exc}") from exc
    return model.to(device).eval(), config, payload
