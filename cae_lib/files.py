"""Writing files safely: every write goes to a temporary file that is renamed into place, so a crash or a
full disk never leaves half a file under the final name (checkpoints, JSON, figures, text)."""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np


#: A failed write with less free space than this on its disk is taken to be the disk filling up:
#: PyTorch's checkpoint writer reports a full disk as a ``RuntimeError`` without the ``errno``.
LOW_SPACE_BYTES = 1 << 20


class DiskFullError(OSError):
    """A file could not be written because its disk (or the user's quota) is full; the old file is unchanged."""


def free_bytes(folder: Path) -> int | None:
    """Free bytes on the disk that holds ``folder`` (None when that cannot be told)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_is_full(err: BaseException, folder: Path) -> bool:
    """Whether ``err``, raised while writing into ``folder``, means that the disk is full."""
    if isinstance(err, OSError) and err.errno is not None:
        return err.errno in (errno.ENOSPC, errno.EDQUOT)
    free = free_bytes(folder)
    return free is not None and free < LOW_SPACE_BYTES


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` only if the block succeeds.

    A crash half-way through a write therefore never leaves a truncated file under the final name,
    and a write that fails leaves an earlier file at ``path`` as it was.

    Raises:
        DiskFullError: the disk filled up during the write (the message says so and what to do).
    """
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp_path, path)
    except (OSError, RuntimeError) as err:
        if isinstance(err, DiskFullError) or not disk_is_full(err, path.parent):
            raise
        free = free_bytes(path.parent)
        left = f"{free / 2**20:.1f} MB free" if free is not None else "no space left"
        kept = f"the earlier {path.name} there is unchanged" if path.exists() else "nothing was written"
        raise DiskFullError(
            f"the disk is full: there was no room to write {path} ({left} on the disk that holds {path.parent}); "
            f"{kept}, and nothing half-written was kept. Free some space there (or write to a folder on another "
            "disk) and run again."
        ) from err
    finally:
        if tmp_path is not None and tmp_path.exists():
            tmp_path.unlink()


def save_figure(fig: Any, path: str | os.PathLike, **kwargs: Any) -> Path:
    """Atomically save a matplotlib figure to ``path`` (the format from its suffix, e.g. ``.png``).

    ``kwargs`` go to ``fig.savefig`` (``dpi=...``, ``bbox_inches="tight"``). A crash while
    saving never leaves half an image under ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower() or "png", **kwargs)
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON (NumPy scalars and arrays are converted)."""

    def default(o: Any) -> Any:
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"cannot serialise {type(o).__name__} to JSON")

    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=default) + "\n")
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
