"""Where dataset files live: the explicit folder, else ``$CAE_DATA_DIR``, else the toolkit's cache."""

from __future__ import annotations

import os
from pathlib import Path

from cae_lib.data.errors import DatasetUnavailableError

ENV_VAR = "CAE_DATA_DIR"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/cae_lib/medmnist``, or ``~/.cache/cae_lib/medmnist``."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "cae_lib" / "medmnist"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """The folder that holds (or will hold) the dataset files.

    Order: the explicit ``data_dir`` argument, then ``$CAE_DATA_DIR`` (ignored when empty), then
    :func:`default_cache_dir`. Nothing is created here.
    """
    if data_dir is not None and str(data_dir) != "":
        return Path(data_dir).expanduser().absolute()
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    return default_cache_dir().absolute()


def is_writable_dir(folder: Path) -> bool:
    """True if ``folder`` exists and may be written to.

    Besides ``os.access`` this also honours the permission bits themselves: a folder marked
    read-only (``r-x``) is treated as read-only even for root, so a shared data folder is never
    written to, whoever runs the code.
    """
    try:
        return folder.is_dir() and os.access(folder, os.W_OK) and bool(folder.stat().st_mode & 0o222)
    except OSError:
        return False


def check_data_dir(folder: Path) -> Path:
    """``folder`` itself, unless it exists and is not a folder (then a clear error, naming ``$CAE_DATA_DIR`` when it came from there)."""
    if folder.exists() and not folder.is_dir():
        env = os.environ.get(ENV_VAR, "").strip()
        if env and Path(env).expanduser().absolute() == folder.absolute():
            raise DatasetUnavailableError(
                f"{ENV_VAR}={env} names a file, not a folder. Set {ENV_VAR} to the folder that holds the MedMNIST .npz "
                f"files (or unset it to use {default_cache_dir()}); to use a single .npz file of your own, pass it as the "
                f"dataset (--dataset {env})."
            )
        raise DatasetUnavailableError(
            f"the data folder {folder} is a file, not a folder. Pass the folder that holds the .npz files "
            f"(--data-dir on the command line, data_dir= in Python, or {ENV_VAR}); to use a single .npz file of "
            f"your own, pass it as the dataset (--dataset {folder})."
        )
    return folder
