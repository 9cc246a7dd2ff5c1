"""Saving and loading checkpoints: weights + config + history + library version, written atomically.

A checkpoint ``run/model.pt`` always has its config beside it as ``run/model.json``, so anyone can
read the settings without loading PyTorch. It also records where its training data came from and a
fingerprint of it (``data``, see :mod:`cae_lib.data.provenance`), so that ``evaluate`` and ``sample``
find that data again from any folder and never use other data by mistake (:func:`checkpoint_dataset`,
:func:`check_data_matches`). Loading rebuilds the model from the stored config and refuses, with a
clear message, a checkpoint whose architecture or dataset does not match, or whose weights are
NaN / infinite (a run that diverged).

**A checkpoint cannot run code.** ``model.pt`` holds only tensors and plain data (numbers, strings,
lists, dicts, ``None``): :func:`save_checkpoint` checks this before it writes (:func:`plain_data`), and
:func:`read_checkpoint` loads with ``torch.load(..., weights_only=True)``, which refuses any other
Python object instead of unpickling it. Unpickling an arbitrary object can run any code the file's
author chose, so a ``model.pt`` shared by a classmate or downloaded from a course page is safe to open.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae_lib import __version__
from cae_lib.config import CAEConfig, flat_settings
from cae_lib.data.image_data import ImageData
from cae_lib.data.provenance import check_same_data, describe, looks_like_path, normalize_reference
from cae_lib.data.registry import is_registered
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.files import atomic_path, write_json

FORMAT = "cae-lib-checkpoint/1"


class CheckpointError(ValueError):
    """A checkpoint that cannot be used as asked (missing, corrupt, unsafe, wrong model or dataset)."""


def plain_data(value: Any, where: str = "checkpoint") -> Any:
    """``value`` as tensors and plain data only, the types ``torch.load(weights_only=True)`` accepts.

    Dicts (with str / int keys), lists and tuples are walked; tensors, ``str``, ``int``, ``float``,
    ``bool`` and ``None`` are kept; NumPy scalars become Python numbers and NumPy arrays become
    tensors. Anything else raises ``TypeError`` naming where it is (e.g. ``checkpoint['extra']['x']``),
    so a checkpoint that could not be loaded safely is never written.
    """
    if value is None or isinstance(value, (str, bool, int, float, torch.Tensor)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value.copy())
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{where} has a key {key!r} of type {type(key).__name__}; a checkpoint's keys must be str or int")
            out[key] = plain_data(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, (list, tuple)):
        return type(value)(plain_data(item, f"{where}[{i}]") for i, item in enumerate(value))
    raise TypeError(
        f"{where} is a {type(value).__module__}.{type(value).__qualname__}; a checkpoint holds only tensors, numbers, "
        "strings, lists and dicts, so that loading it can never run code. Convert it (e.g. a config with .to_dict())."
    )


def save_checkpoint(
    path: str | Path,
    model: ContrastiveAutoencoder,
    config: CAEConfig,
    history: list[dict[str, float]] | None = None,
    trainer_state: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> Path:
    """Atomically write ``path`` (a ``.pt`` file) and its config ``path.with_suffix('.json')``.

    ``trainer_state`` (optimizer and loop state, see :meth:`Trainer.state_dict`) makes the run
    resumable; leave it out for small release checkpoints. ``data`` is the provenance of the
    training data (:func:`cae_lib.data.provenance.describe`).
    """
    path = Path(path)
    payload = plain_data({
        "format": FORMAT,
        "version": __version__,
        "config": config.to_dict(),
        "model_state": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "history": history or [],
        "trainer_state": trainer_state,
        "extra": extra or {},
        "data": data,
    })
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    sidecar = {"format": FORMAT, "version": __version__, "config": config.to_dict(), "extra": extra or {}, "data": data}
    write_json(path.with_suffix(".json"), sidecar)
    return path


def resolve_checkpoint_path(path: str | Path) -> Path:
    """``path`` itself, or ``path/model.pt`` when ``path`` is a run folder.

    Raises:
        CheckpointError: ``path`` is missing, or a folder without ``model.pt``.
    """
    path = Path(path)
    if path.is_dir():
        if (path / "model.pt").is_file():
            return path / "model.pt"
        found = sorted(p.name for p in path.glob("*.pt"))
        hint = f" It holds {', '.join(found)}: pass one of those." if found else " Pass the model.pt file that `train` wrote."
        raise CheckpointError(f"checkpoint {path} is a folder without a model.pt.{hint}")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `python -m cae_lib train --out DIR`")
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load the raw checkpoint dictionary safely (``weights_only=True``), with clear errors.

    Raises:
        CheckpointError: missing; damaged (truncated, empty, another kind of file); holding Python
            objects other than tensors and plain data (refused unread, so their code never runs);
            or a file that is not a cae-lib checkpoint (e.g. a bare ``state_dict``).
    """
    path = resolve_checkpoint_path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "weights only" not in str(exc).lower():
            raise CheckpointError(_damaged(path, exc)) from exc
        found = re.search(r"GLOBAL ([\w.]+)", str(exc))
        what = f" (it asks for {found.group(1)})" if found else ""
        raise CheckpointError(
            f"checkpoint {path} holds Python objects other than tensors and plain data{what}. cae-lib will not unpickle "
            "arbitrary objects, because unpickling one can run any code its author chose. Use a checkpoint written by "
            "cae-lib's own train command (it saves only tensors, numbers, strings, lists and dicts), or train your own: "
            "python -m cae_lib train --out DIR"
        ) from None
    except Exception as exc:  # truncated zip, empty file, a text file named .pt, ...
        raise CheckpointError(_damaged(path, exc)) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(_not_cae_lib(path, payload))
    return payload


def _damaged(path: Path, exc: BaseException) -> str:
    size = path.stat().st_size
    detail = str(exc).strip().split(". ")[0].splitlines()[0][:120] if str(exc).strip() else "no detail"
    return (
        f"checkpoint {path} is damaged or not a PyTorch file ({size:,} bytes; {type(exc).__name__}: {detail}): "
        "it may have been cut short while it was copied or downloaded. Copy it again from where it came from, or train "
        "a new one with python -m cae_lib train --out DIR"
    )


def _not_cae_lib(path: Path, payload: Any) -> str:
    """Why ``payload`` (safely loaded from ``path``) is not a cae-lib checkpoint, and what to do."""
    how = ("Save a model with cae_lib.checkpoint.save_checkpoint(path, model, config), which stores the settings "
           "beside the weights, or train one with python -m cae_lib train --out DIR")
    if isinstance(payload, dict) and payload and all(isinstance(v, torch.Tensor) for v in payload.values()):
        first = next(iter(payload))
        return (f"{path} is a bare state_dict ({len(payload)} tensors, e.g. {first!r}), not a cae-lib checkpoint: it has "
                f"the weights but not the settings that rebuild the model. {how}.")
    if isinstance(payload, dict):
        keys = ", ".join(repr(k) for k in list(payload)[:6]) or "none"
        found = f"format {payload['format']!r}" if "format" in payload else f"keys {keys}"
        return f"{path} is not a cae-lib checkpoint (expected format {FORMAT!r}; it has {found}). {how}."
    return f"{path} is not a cae-lib checkpoint (expected a dict with format {FORMAT!r}, found a {type(payload).__name__}). {how}."


def run_finished(extra: dict[str, Any]) -> bool:
    """Whether a checkpoint's ``extra`` says its run is over: every epoch done, or stopped early
    (False when it does not record its epochs)."""
    done, total = extra.get("epochs_done"), extra.get("epochs_total")
    return bool(extra.get("stopped_early")) or (done is not None and total is not None and done >= total)


def checkpoint_notes(path: str | Path, payload: dict[str, Any], unfinished: bool = True) -> list[str]:
    """What a user of the checkpoint at ``path`` should know: the warnings of its training, whether
    that training was interrupted before its last epoch (its weights are then an early stage of the
    run, not a weight average even if one was asked for; leave this out with ``unfinished=False``,
    e.g. while the run is still writing there), and whether its ``.json`` was edited by hand."""
    extra = payload.get("extra") or {}
    notes = [f"when this checkpoint was trained, {message}" for message in extra.get("warnings", [])]
    done, total = extra.get("epochs_done"), extra.get("epochs_total")
    if unfinished and done is not None and total is not None and not run_finished(extra):
        notes.append(f"this checkpoint is from an unfinished run ({done} of {total} epochs done); finish it with "
                     f"python -m cae_lib train --out {Path(path).parent} --resume")
    sidecar = _sidecar_differences(Path(path), payload)
    if sidecar:
        notes.append(f"{Path(path).with_suffix('.json')} {sidecar}. cae-lib uses the settings stored in {Path(path).name}: "
                     "the .json is a copy for reading, and editing it changes nothing. To change a setting, train again with it.")
    return notes


def _sidecar_differences(path: Path, payload: dict[str, Any]) -> str:
    """How the ``.json`` beside a checkpoint disagrees with the config inside it ("" when it agrees or is absent)."""
    sidecar = path.with_suffix(".json")
    if not sidecar.is_file():
        return ""
    try:
        config = json.loads(sidecar.read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        return "is not the JSON cae-lib wrote (edited by hand?)"
    stored = json.loads(json.dumps(payload.get("config") or {}))  # as write_json wrote it (tuples become lists)
    if not isinstance(config, dict):
        return "has no settings (no \"config\" section)"
    flat_old, flat_new = flat_settings(stored), flat_settings(config)
    changed = [k for k in sorted(set(flat_old) | set(flat_new)) if flat_old.get(k) != flat_new.get(k)]
    if not changed:
        return ""
    shown = "; ".join(f"{k}: {flat_old.get(k)!r} in the checkpoint, {flat_new.get(k)!r} in the .json" for k in changed[:3])
    return f"differs from the checkpoint's own settings ({shown}{'; ...' if len(changed) > 3 else ''})"


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
    if expected_dataset is not None and not same_dataset(config.dataset, expected_dataset):
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
    bad = [k for k, v in payload["model_state"].items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if bad:
        raise CheckpointError(
            f"checkpoint {path} has NaN or infinite values in {', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}: its "
            "training diverged, and it would decode every code to the same image. Train it again with a lower "
            f"learning rate (--lr, TrainConfig.lr; it used {config.train.lr:g})."
        )
    return model.to(device).eval(), config, payload


def same_dataset(a: str, b: str) -> bool:
    """Whether two dataset references (names or paths, any case for names) mean the same dataset."""
    if looks_like_path(a) or looks_like_path(b):
        return normalize_reference(a) == normalize_reference(b)
    return a.lower() == b.lower()


def checkpoint_dataset(path: str | Path, config: CAEConfig, payload: dict[str, Any], dataset: str | None = None) -> str:
    """The dataset to evaluate or sample the checkpoint at ``path`` on: ``dataset`` if given, else its own.

    Its own is the recorded provenance (an absolute path for your own data, so it is found from
    any working directory), else the config's dataset name.

    Raises:
        CheckpointError: the checkpoint names data that is neither a known dataset nor a path (a
            checkpoint of your own data from before cae-lib recorded paths), or data that no longer
            exists; or, for a checkpoint that records no fingerprint, ``dataset`` is another dataset.
    """
    if dataset is not None and str(dataset) != "":
        own = config.dataset
        if not payload.get("data") and (is_registered(own) or looks_like_path(own)) and not same_dataset(own, str(dataset)):
            raise CheckpointError(
                f"checkpoint {path} was trained on {own!r}, not {str(dataset)!r}; pass a checkpoint for {str(dataset)!r} or "
                f"train one with `python -m cae_lib train --dataset {dataset}`"
            )
        return str(dataset)
    recorded = (payload.get("data") or {}).get("dataset") or config.dataset
    if not is_registered(recorded) and not looks_like_path(recorded):
        raise CheckpointError(
            f"checkpoint {path} was trained on {recorded!r}, which is not a dataset name, and it does not record where "
            "that data is (it was saved by an older cae-lib). Pass the data it was trained on: --dataset PATH "
            "(dataset= in Python)."
        )
    if looks_like_path(recorded) and not Path(recorded).exists():
        raise CheckpointError(
            f"checkpoint {path} was trained on {recorded}, which no longer exists. If the data moved, pass its new "
            "place: --dataset PATH (dataset= in Python)."
        )
    return recorded


def check_data_matches(path: str | Path, config: CAEConfig, payload: dict[str, Any], data: ImageData) -> None:
    """Raise :class:`CheckpointError` unless ``data`` is the data the checkpoint was trained on, and fits its model.

    Compares the recorded fingerprint (file MD5 or folder manifest) with ``data``'s, and the image
    channels and size with the model's.
    """
    try:
        check_same_data(payload.get("data"), describe(data), what=f"checkpoint {path}")
    except ValueError as err:
        raise CheckpointError(str(err)) from err
    want = (config.model.in_channels, config.model.image_size)
    have = (data.n_channels, data.size)
    if want != have:
        kind = {1: "grey", 3: "RGB"}
        raise CheckpointError(
            f"checkpoint {path} takes {kind.get(want[0], want[0])} {want[1]} x {want[1]} images, but {data.name} has "
            f"{kind.get(have[0], have[0])} {have[1]} x {have[1]} images. Use the data the model was trained on, or "
            "train a model on this data."
        )
