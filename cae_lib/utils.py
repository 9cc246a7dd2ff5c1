"""Small helpers the method's modules share: seeding, device choice, progress bars."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and PyTorch; return a fresh ``torch.Generator`` seeded with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def model_device(model: torch.nn.Module) -> torch.device:
    """The device of a model's first parameter (CPU for a model without parameters)."""
    p = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None
    return p.device if p is not None else torch.device("cpu")


def class_name(label: Any, class_names: Any = None) -> str:
    """The name of an integer class label, or the label itself when no (matching) name is given."""
    if class_names is None:
        return str(label)
    try:
        return str(class_names[int(label)])
    except (IndexError, KeyError, TypeError, ValueError):
        return str(label)


DEVICE_CHOICES = "auto (CUDA, then MPS, then the CPU), cpu, cuda, cuda:N (the N-th GPU) or mps"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def pick_device(device: str | None = "auto") -> torch.device:
    """Return the requested device; ``"auto"`` picks CUDA, then Apple MPS, then CPU.

    Raises:
        ValueError: ``device`` is not a device name (``"gpu"``), or names a device this machine
            has not got (``"cuda"`` without a GPU, ``"cuda:3"`` with one GPU, ``"mps"`` off a Mac).
            The message names ``--device`` / ``TrainConfig.device`` and the values that work.
    """
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    where = f"device {str(device)!r} (--device, TrainConfig.device)"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"{where} is not a device name; use --device {DEVICE_CHOICES}.") from None
    fix = "Use --device auto (it takes the best device there is) or --device cpu."
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "this PyTorch was built without CUDA" if torch.version.cuda is None else "PyTorch finds no NVIDIA GPU or driver"
            raise ValueError(f"{where}: no CUDA GPU is available here ({why}). {fix}")
        count = torch.cuda.device_count()
        if dev.index is not None and dev.index >= count:
            raise ValueError(f"{where}: this machine has {count} GPU{'s' if count != 1 else ''}, numbered 0 to {count - 1}. "
                             f"Use --device cuda:0 ... cuda:{count - 1}, or --device cuda.")
    elif dev.type == "mps" and not _mps_available():
        raise ValueError(f"{where}: Apple's MPS is not available here (it needs a Mac with Apple silicon and a PyTorch "
                         f"built for it). {fix}")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{where}: cae-lib runs on {DEVICE_CHOICES}, not {dev.type}. {fix}")
    return dev


def in_notebook() -> bool:
    """True when running inside a Jupyter kernel (used to pick the tqdm flavour)."""
    try:
        from IPython import get_ipython  # type: ignore

        shell = get_ipython()
        return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"
    except Exception:  # pragma: no cover - IPython missing
        return False


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm progress bar that renders as a widget in notebooks and as text in a terminal."""
    if in_notebook():
        try:
            from tqdm.notebook import tqdm as tqdm_nb

            return tqdm_nb(iterable, **kwargs)
        except Exception:  # ipywidgets missing: fall back to text
            pass
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
