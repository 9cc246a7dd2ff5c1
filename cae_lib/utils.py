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


def pick_device(device: str | None = "auto") -> torch.device:
    """The requested device; ``"auto"`` picks CUDA, then Apple MPS, then the CPU.

    A run checks a named device first, with a message that says what to type instead
    (:func:`cae_lib.machine.check_device`).
    """
    if device not in (None, "auto"):
        return torch.device(device)
    mps = getattr(torch.backends, "mps", None)
    return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps is not None and mps.is_available() else "cpu")


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
