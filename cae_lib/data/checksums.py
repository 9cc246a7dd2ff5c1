"""MD5 checksums of data files, each file hashed once and then remembered in the toolkit's cache.

The MD5 of a file is kept in ``$XDG_CACHE_HOME/cae_lib/verified`` (:func:`verified_cache_dir`),
keyed by the file's path, size and modification time, so large files are not re-hashed on every
load and nothing is ever written next to the user's data.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cae_lib.data.paths import default_cache_dir
from cae_lib.files import write_text


def md5sum(path: str | os.PathLike, chunk_size: int = 1 << 20) -> str:
    """The MD5 hex digest of a file, read in chunks."""
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(chunk_size), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified_cache_dir() -> Path:
    """Where checksums of data files are remembered: ``$XDG_CACHE_HOME/cae_lib/verified``."""
    return default_cache_dir().parent / "verified"


def _stamp_path(path: Path) -> Path:
    key = hashlib.md5(str(path.absolute()).encode()).hexdigest()
    return verified_cache_dir() / f"{key}.md5"


def _stamp_text(path: Path, md5: str) -> str:
    st = path.stat()
    return f"{md5} {st.st_size} {st.st_mtime_ns} {path.absolute()}\n"


def _stamped_md5(path: Path) -> str | None:
    """The MD5 remembered for this exact file (same path, size and mtime), else None."""
    try:
        text = _stamp_path(path).read_text()
        md5 = text.split(" ", 1)[0]
        return md5 if text == _stamp_text(path, md5) else None
    except OSError:
        return None


def remember_md5(path: Path, md5: str) -> None:
    """Remember ``path``'s MD5 in the toolkit's cache; silently skipped when the cache is not writable."""
    try:
        write_text(_stamp_path(path), _stamp_text(path, md5))
    except OSError:
        pass


def cached_md5(path: str | os.PathLike) -> str:
    """The MD5 of a file, hashed once per (path, size, mtime) and then remembered in :func:`verified_cache_dir`."""
    path = Path(path)
    known = _stamped_md5(path)
    if known is not None:
        return known
    actual = md5sum(path)
    remember_md5(path, actual)
    return actual


def verify_md5(path: Path, md5: str, use_stamp: bool = True) -> str:
    """Return the file's MD5 (remembered from an earlier check of this exact file when ``use_stamp``)."""
    if use_stamp:
        return cached_md5(path)
    actual = md5sum(path)
    remember_md5(path, actual)
    return actual
