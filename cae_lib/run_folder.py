"""Run folders: one folder per training run, locked while a run writes to it, never silently reused.

A run folder holds ``model.pt`` (weights, config, history, optimizer state), ``model.json`` (its
settings, readable without PyTorch) and, after ``evaluate --json``, ``metrics.json``.

- :func:`default_run_dir` gives every run a folder of its own, ``runs/<dataset>-<preset>-<time>``,
  so two trainings never clobber each other by default.
- :func:`check_run_dir` refuses a folder that holds another run unless the caller resumes it or
  explicitly overwrites it, and refuses a path that is a file or lies in a read-only folder,
  before any work starts.
- :class:`RunLock` marks a folder as in use (an OS file lock on ``.lock``, released when the
  process ends, even on a crash): a second run on the same folder is refused at once. The empty
  ``.lock`` file stays in a folder that holds a run (deleting it while another process could open
  it would let two runs lock two different files).
"""

from __future__ import annotations

import datetime
import os
import re
from pathlib import Path
from typing import Any, Sequence

try:  # POSIX
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]
    import msvcrt

from cae_lib.data.paths import is_writable_dir

LOCK_NAME = ".lock"
#: Files a run writes into its folder (``--overwrite`` removes exactly these).
RUN_FILES: tuple[str, ...] = ("model.pt", "model.json", "metrics.json")


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (in use, holds another run, not writable)."""


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-") or "data"


def default_run_dir(dataset: str, preset: str = "cae", root: str | os.PathLike = "runs", now: datetime.datetime | None = None) -> Path:
    """A new, unused folder ``root/<dataset>-<preset>-<YYYYmmdd-HHMMSS>`` (``-2``, ``-3``... if taken).

    ``dataset`` may be a name or a path (its file or folder name is used).
    """
    name = Path(str(dataset).rstrip("/\\")).name
    name = name[:-4] if name.lower().endswith(".npz") else name
    stamp = (now or datetime.datetime.now()).strftime("%Y%m%d-%H%M%S")
    base = Path(root) / f"{_slug(name)}-{_slug(preset)}-{stamp}"
    candidate, n = base, 1
    while candidate.exists():
        n += 1
        candidate = base.with_name(f"{base.name}-{n}")
    return candidate


def run_contents(folder: Path) -> list[str]:
    """Names in ``folder`` other than the lock file and temporary files of atomic writes."""
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.name != LOCK_NAME and not (p.name.startswith(".") and p.name.endswith(".tmp")))


def check_writable_location(path: Path, option: str) -> None:
    """``path`` (a file or folder to be written) can be created: its nearest existing ancestor is a writable folder."""
    ancestor = path.parent if path.exists() else path
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise RunFolderError(f"{option} {path}: {ancestor} is a file, so {path} cannot be created there. Choose another path.")
    if not is_writable_dir(ancestor):
        raise RunFolderError(f"{option} {path}: the folder {ancestor} is read-only, so nothing can be written there. Choose a writable path.")


def check_run_dir(folder: str | os.PathLike, resume: bool = False, overwrite: bool = False, option: str = "--out") -> Path:
    """Check, before any work, that ``folder`` may receive a training run; return it as a ``Path``.

    Raises:
        RunFolderError: ``folder`` is a file; it (or the folder it would go in) is read-only; it is
            in use by a running training; it holds files and neither ``resume`` nor ``overwrite``
            is set; ``resume`` is set but there is no ``model.pt`` to resume.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise RunFolderError(f"{option} {folder} is a file; a run needs a folder (it writes model.pt and model.json into it). Choose another path.")
    check_writable_location(folder, option)
    holder = lock_holder(folder)
    if holder:
        raise RunFolderError(f"{option} {folder} is in use by another run ({holder}). Wait for it to finish, or choose another folder.")
    contents = run_contents(folder)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite contradict each other: --resume continues the run in the folder, --overwrite replaces it")
    if resume:
        if "model.pt" not in contents:
            raise RunFolderError(f"--resume: there is no {folder / 'model.pt'} to continue. Drop --resume to start a new run.")
        return folder
    if contents and not overwrite:
        shown = ", ".join(contents[:5]) + (", ..." if len(contents) > 5 else "")
        raise RunFolderError(
            f"{option} {folder} is not empty ({shown}): it holds another run, which would be replaced. Choose a new "
            "folder (leave --out out for a fresh one), continue that run with --resume, or replace it with --overwrite."
        )
    return folder


def clear_run_files(folder: Path, names: Sequence[str] = RUN_FILES) -> list[str]:
    """Delete the files an earlier run wrote into ``folder`` (``--overwrite``); return their names."""
    removed = []
    for name in names:
        path = folder / name
        if path.is_file():
            path.unlink()
            removed.append(name)
    return removed


def lock_holder(folder: Path) -> str | None:
    """A description of the process holding ``folder``'s lock (``"pid 123, since ..."``), else None."""
    lock = folder / LOCK_NAME
    if not lock.is_file():
        return None
    try:
        with RunLock(folder, create=False):
            return None
    except RunFolderError as err:
        return getattr(err, "holder", None) or "another process"


class RunLock:
    """Hold an exclusive lock on ``folder`` while a run writes into it.

    Usage: ``with RunLock(folder): ...``. A second lock on the same folder, from another process,
    raises :class:`RunFolderError` at once. Taking it again in the process that holds it is
    allowed (nested use does nothing). The OS releases the lock when the process dies, so a crash
    never leaves a folder locked. A folder that this lock created and that is still empty when the
    lock is released is removed again.
    """

    def __init__(self, folder: str | os.PathLike, create: bool = True) -> None:
        self.folder = Path(folder)
        self.create = create
        self._file: Any = None
        self._created = False

    def __enter__(self) -> "RunLock":
        if self.create and not self.folder.exists():
            self.folder.mkdir(parents=True)
            self._created = True
        path = self.folder / LOCK_NAME
        f = open(path, "a+")
        try:
            _try_lock(f)
        except OSError:
            f.seek(0)
            holder = f.read().strip()
            f.close()
            if holder.startswith(f"pid {os.getpid()},"):
                return self  # this process already holds it: nested use
            err = RunFolderError(f"{self.folder} is in use by another run ({holder or 'another process'}); wait for it or choose another folder")
            err.holder = holder  # type: ignore[attr-defined]
            raise err from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()}, since {datetime.datetime.now():%Y-%m-%d %H:%M:%S}\n")
        f.flush()
        self._file = f
        return self

    def __exit__(self, *exc: object) -> None:
        if self._file is None:
            return
        self._file.seek(0)
        self._file.truncate()
        _unlock(self._file)
        self._file.close()
        self._file = None
        if self.create and not run_contents(self.folder):
            (self.folder / LOCK_NAME).unlink(missing_ok=True)
            if self._created:
                try:
                    self.folder.rmdir()
                except OSError:
                    pass


def _try_lock(f: Any) -> None:
    if fcntl is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    else:  # pragma: no cover - Windows
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)


def _unlock(f: Any) -> None:
    if fcntl is not None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)
    else:  # pragma: no cover - Windows
        f.seek(0)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
