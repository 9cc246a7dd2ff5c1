"""Checking every output path of a command before any work starts, and the messages of a command.

The rules, the same for every command:

1. a file option (``--json``, ``sample --out``, ``--npz``) must not name a folder, and a folder
   option (``train --out``, ``demo --out``, ``benchmark --out``) must not name a file;
2. an output never replaces one of the command's inputs (the checkpoint, its settings file, the
   data), nor a checkpoint of another run or its settings file;
3. an existing file is replaced only with ``--overwrite``;
4. two outputs of one command never share a path;
5. the folder an output goes in must be writable.

A problem raises :class:`OutputError` (a ``ValueError``: the CLI prints its one-line message).
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from cae_lib.checkpoint import CheckpointError, checkpoint_notes, resolve_checkpoint_path
from cae_lib.run_folder import check_writable_location, lock_holder


class OutputError(ValueError):
    """An output path that cannot be written as asked (names the option, the path and the fix)."""


def _same(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _is_run_file(path: Path) -> bool:
    """A checkpoint (``*.pt`` beside its ``*.json``) or the settings file of one."""
    if path.suffix == ".pt" and path.is_file():
        return True
    return path.suffix == ".json" and path.with_suffix(".pt").is_file()


def check_output_file(path: str | os.PathLike, option: str, inputs: Sequence[str | os.PathLike] = (), overwrite: bool = False,
                      example: str = "results.json") -> Path:
    """Check one output file (rules 1, 2, 3 and 5 above); return it as a ``Path``.

    ``example`` is a file name the message suggests inside a folder given by mistake.
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path} is a folder; give a file name (e.g. {path / example}).")
    for given in inputs:
        given = Path(given)
        if path.absolute() == given.absolute() or _same(path, given):
            raise OutputError(f"{option} {path} is one of this command's inputs; writing there would destroy it. Choose another file name.")
    if _is_run_file(path):
        raise OutputError(
            f"{option} {path} would replace a checkpoint or its settings file (the run in {path.parent}). "
            "Choose another file name."
        )
    if path.exists() and not overwrite:
        raise OutputError(f"{option} {path} already exists. Pass --overwrite to replace it, or choose another file name.")
    check_writable_location(path, option)
    return path


def check_distinct(outputs: Mapping[str, Path | None]) -> None:
    """Rule 4: no two outputs of one command may share a path."""
    seen: dict[Path, str] = {}
    for option, path in outputs.items():
        if path is None:
            continue
        key = Path(path).absolute()
        if key in seen:
            raise OutputError(f"{seen[key]} and {option} both write {path}; give them different file names.")
        seen[key] = option


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Rules 1 and 5 for an output folder; return it as a ``Path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path} is a file; this option needs a folder. Choose another path.")
    check_writable_location(path, option)
    return path


def warn(message: str) -> None:
    """Print a warning line on stderr (the CLI's voice for :class:`~cae_lib.experiment.TrainingWarning`)."""
    print(f"warning: {message}", file=sys.stderr)


@contextmanager
def step(message: str, quiet: bool = False) -> Iterator[None]:
    """Print ``message ...`` now and ``done (3.2 s)`` when the block ends, so long steps are never silent."""
    t0 = time.perf_counter()
    if not quiet:
        print(f"{message} ...", flush=True)
    yield
    if not quiet:
        print(f"  done in {time.perf_counter() - t0:.1f} s", flush=True)


def _training_now(folder: Path) -> str | None:
    """Who holds ``folder``'s run lock (``"pid 123, since ..."``) when another process trains there, else None."""
    try:
        return lock_holder(folder)
    except OSError:  # a read-only shared folder: its lock cannot be opened, and nobody trains there
        return None


def checkpoint_to_read(path: str | os.PathLike) -> Path:
    """The checkpoint a command reads (``path`` or ``path/model.pt``), with a clear error while a run is
    still before its first checkpoint in that folder (rather than "does not exist: train one").

    Raises:
        CheckpointError: no checkpoint there (see :func:`cae_lib.checkpoint.resolve_checkpoint_path`).
    """
    path = Path(path)
    folder = path if path.is_dir() else path.parent
    if not (folder / "model.pt").is_file() and (path.is_dir() or path.name == "model.pt"):
        holder = _training_now(folder)
        if holder:
            raise CheckpointError(
                f"{folder} is in use by a training run ({holder}) that has not saved its first checkpoint yet "
                f"(it saves {folder / 'model.pt'} after every epoch). Wait for its first epoch to end, or for the run to finish."
            )
    return resolve_checkpoint_path(path)


def notes_for(path: Path, payload: dict[str, Any]) -> list[str]:
    """What a user of the checkpoint at ``path`` should know (:func:`cae_lib.checkpoint.checkpoint_notes`),
    and whether a training run is writing to its folder right now.

    While a run writes there, the checkpoint read is the last one it saved, and "finish it with
    --resume" would be refused (the folder is in use), so that note is replaced by one saying so.
    """
    holder = _training_now(path.parent)
    if not holder:
        return checkpoint_notes(path, payload)
    extra = payload.get("extra") or {}
    done, total = extra.get("epochs_done", "?"), extra.get("epochs_total", "?")
    return checkpoint_notes(path, payload, unfinished=False) + [
        f"a training run is writing to {path.parent} right now ({holder}): this is the checkpoint it saved last "
        f"({done} of {total} epochs done), and the run will replace it. Run this command again when the training has finished."
    ]
