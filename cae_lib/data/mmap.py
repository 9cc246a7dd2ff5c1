"""Splits too large for memory: unpack once to ``.npy``, then memory-map.

MedMNIST+ at 224 px is big: TissueMNIST (236k images in all, 165k in train) is about 12 GB as
uint8 at 224 x 224, more than most machines have. An ``.npz`` is a zip archive, so a split cannot be read
lazily from it. Instead, a split whose images exceed the memory budget is streamed out of the
archive once (in 1 MiB chunks, so unpacking needs no more memory than that) into an ``.npy`` file
in the toolkit's cache, and opened with ``np.load(mmap_mode="r")``: the operating system then
pages in only the rows a batch touches, and :class:`~cae_lib.batches.ImageBatches` converts
only those rows to floats.

The budget is ``memory_budget_mb()``: ``$CAE_MEMORY_BUDGET_MB`` if set, else 512 MB, so every
28 px split loads into memory as before, and larger splits are mapped. The cache lives beside the
download cache (``~/.cache/cae_lib/mmap``), one folder per source file, keyed by the file's path,
size and modification time: a changed file is unpacked again. The user's data folder is never
written to.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from cae_lib.data.paths import default_cache_dir
from cae_lib.files import atomic_path

ENV_BUDGET = "CAE_MEMORY_BUDGET_MB"
DEFAULT_BUDGET_MB = 512.0
_CHUNK = 1 << 20


def memory_budget_mb() -> float:
    """Splits whose images take more than this many MB are memory-mapped (``$CAE_MEMORY_BUDGET_MB``, default 512)."""
    raw = os.environ.get(ENV_BUDGET, "").strip()
    if not raw:
        return DEFAULT_BUDGET_MB
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{ENV_BUDGET}={raw!r} is not a number of megabytes; unset it or give e.g. 2048") from None
    if value < 0:
        raise ValueError(f"{ENV_BUDGET} must be >= 0 MB, got {value}")
    return value


def npz_member_nbytes(path: Path, key: str) -> int:
    """Bytes of array ``key`` in the .npz at ``path``, read from its .npy header only (nothing is decompressed past it)."""
    with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member:
        version = np.lib.format.read_magic(member)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(member)
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


def mmap_cache_dir(path: Path) -> Path:
    """The cache folder for the unpacked arrays of ``path`` (keyed by its absolute path, size and mtime)."""
    stat = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return default_cache_dir().parent / "mmap" / f"{path.stem}-{key}"


def open_npz_member(path: Path, key: str) -> np.ndarray:
    """Array ``key`` of the .npz at ``path`` as a read-only memory map, unpacking it to the cache on first use."""
    target = mmap_cache_dir(path) / f"{key}.npy"
    if not target.exists():
        with zipfile.ZipFile(path) as archive, archive.open(f"{key}.npy") as member, atomic_path(target) as tmp:
            with open(tmp, "wb") as out:
                shutil.copyfileobj(member, out, _CHUNK)  # streamed: memory stays at one chunk
    return np.load(target, mmap_mode="r")


def should_mmap(path: Path, key: str, budget_mb: float | None = None) -> bool:
    """Whether array ``key`` of ``path`` is larger than the memory budget.

    A file that cannot be read this way (not a zip, truncated, no such array) gives False: the
    ordinary reader then reports what is wrong with it, with the fix.
    """
    budget = memory_budget_mb() if budget_mb is None else budget_mb
    try:
        nbytes = npz_member_nbytes(path, key)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, EOFError):
        return False
    return nbytes > budget * 1e6
