"""Where a dataset came from, and a fingerprint that recognises it again.

A checkpoint records the provenance of its training data (:func:`describe`):

    {"dataset": "/home/me/xray.npz",   # what load_dataset needs to find it again, from any folder
     "name": "xray",                   # its short name, for tables and titles
     "kind": "npz",                    # "medmnist", "bundled", "npz" or "folder"
     "path": "/home/me/xray.npz",      # the file or folder read (None for the bundled digits)
     "size": 28,
     "fingerprint": "md5:3f2a..."}     # the file's MD5, or "manifest:<md5>" for a folder

``evaluate`` and ``sample`` use ``dataset`` to load the same data again, and compare fingerprints
(:func:`check_same_data`) so that a checkpoint is never scored or sampled on other data that
merely has the same name (a folder called ``breastmnist/`` is not the official BreastMNIST).

A folder's manifest hash covers the relative path, the size and the MD5 of every image file that
the loader reads (linked ones included), and its ``class_names.json``: renaming, adding, removing or
editing an image changes it; copying the folder elsewhere does not.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from cae_lib.data.checksums import cached_md5, md5sum
from cae_lib.data.folder import dataset_files
from cae_lib.data.image_data import ImageData
from cae_lib.data.registry import get_info, is_registered

BUNDLED_FINGERPRINT = "bundled:sklearn-digits"


def looks_like_path(name: object) -> bool:
    """Registry names win; anything else with a path separator, an .npz suffix or on disk is a path."""
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str) or not name.strip() or is_registered(name):
        return False
    seps = [os.sep] + ([os.altsep] if os.altsep else []) + ["/"]
    return any(s in name for s in seps) or name.lower().endswith(".npz") or Path(name).expanduser().exists()


def normalize_reference(dataset: str | os.PathLike) -> str:
    """A registry name in its canonical form, or a path made absolute (so it works from any folder)."""
    if looks_like_path(dataset):
        return str(Path(dataset).expanduser().resolve())
    return get_info(str(dataset)).name if is_registered(str(dataset)) else str(dataset)


def _is_official_file(data: ImageData) -> bool:
    """True for the official file of a registered dataset (or the bundled digits)."""
    if not is_registered(data.name):
        return False
    info = get_info(data.name)
    if info.is_bundled:
        return data.source.startswith("sklearn digits")
    source = Path(data.source)
    return source.is_file() and source.name == info.filename_for(data.size)


def dataset_reference(data: ImageData) -> str:
    """What to pass to ``load_dataset`` to get ``data`` back from any working directory.

    The registry name for MedMNIST files and the bundled digits; the absolute path of your own
    folder or .npz file (so a folder named ``breastmnist/`` is never mistaken for BreastMNIST).
    """
    if _is_official_file(data):
        return get_info(data.name).name
    source = Path(data.source) if data.source else None
    if source is not None and source.exists():
        return str(source.resolve())
    return data.name


def folder_manifest_hash(folder: str | os.PathLike) -> str:
    """MD5 over (relative path, size, MD5) of every image the loader reads, and ``class_names.json``.

    The files are those of :func:`~cae_lib.data.folder.dataset_files` (so linked images and linked class
    folders count, hidden files do not); a link is listed under its own name, its content is the target's.
    """
    folder = Path(folder)
    paths = [f for _, files in dataset_files(folder) for f in files]
    if (folder / "class_names.json").is_file():
        paths.append(folder / "class_names.json")
    rel = sorted((p.relative_to(folder).parts, p) for p in paths)
    lines = [f"{'/'.join(parts)}\t{path.stat().st_size}\t{md5sum(path)}" for parts, path in rel]
    return hashlib.md5("\n".join(lines).encode()).hexdigest()


def fingerprint(data: ImageData) -> str | None:
    """``"md5:<file MD5>"``, ``"manifest:<hash>"`` for a folder, the bundled marker, or None (unknown)."""
    if is_registered(data.name) and get_info(data.name).is_bundled and data.source.startswith("sklearn digits"):
        return BUNDLED_FINGERPRINT
    source = Path(data.source) if data.source else None
    if source is None or not source.exists():
        return None
    return f"manifest:{folder_manifest_hash(source)}" if source.is_dir() else f"md5:{cached_md5(source)}"


def describe(data: ImageData) -> dict[str, Any]:
    """The provenance record of ``data`` (see the module docstring)."""
    source = Path(data.source) if data.source else None
    if _is_official_file(data):
        kind = "bundled" if get_info(data.name).is_bundled else "medmnist"
    else:
        kind = "folder" if source is not None and source.is_dir() else "npz"
    return {
        "dataset": dataset_reference(data),
        "name": data.name,
        "kind": kind,
        "path": str(source.resolve()) if source is not None and source.exists() else None,
        "size": data.size,
        "fingerprint": fingerprint(data),
    }


def _where(record: dict[str, Any]) -> str:
    path = record.get("path")
    shown = record.get("dataset") or record.get("name")
    return f"{shown}" + (f" ({path})" if path and path != shown else "")


def check_same_data(recorded: dict[str, Any] | None, current: dict[str, Any], what: str = "the checkpoint") -> None:
    """Raise ``ValueError`` naming both when ``current`` data is not the data ``recorded`` describes.

    Nothing is checked when either fingerprint is unknown (checkpoints from older versions).
    """
    if not recorded or not recorded.get("fingerprint") or not current.get("fingerprint"):
        return
    if recorded["fingerprint"] == current["fingerprint"]:
        return
    raise ValueError(
        f"{what} was trained on {_where(recorded)} [{recorded['fingerprint']}], but the data found now is "
        f"{_where(current)} [{current['fingerprint']}]: not the same data. Point to the data it was trained on "
        "(--dataset PATH; dataset= in Python), or train a new model on this data."
    )
