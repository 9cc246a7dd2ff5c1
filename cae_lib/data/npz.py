"""Reading and writing ``.npz`` files in the MedMNIST layout.

The file holds the keys

    train_images, val_images, test_images   uint8, (N, H, W) for grey or (N, H, W, C) for RGB
    train_labels, val_labels, test_labels   integers, (N, 1) or (N,)

(plus, in files written by :func:`save_npz`, ``class_names`` and ``metadata_json``). Official
MedMNIST files, your own files and generated samples all use it, so they all load through
``load_dataset(path)``. A file that cannot be read raises :class:`CorruptFileError` saying to
delete it and fetch it again.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from cae_lib.data.errors import CorruptFileError
from cae_lib.data.layout import labels_to_1d, read_class_names, resize_images, to_medmnist_layout
from cae_lib.data.registry import SPLITS
from cae_lib.utils import atomic_path

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _corrupt(path: Path, err: BaseException | str) -> CorruptFileError:
    return CorruptFileError(
        f"{path} cannot be read as an .npz dataset ({err}). It is probably truncated or corrupted: "
        "delete it and download it again (or re-create it)."
    )


def npz_keys(path: Path) -> list[str]:
    """The array names in an .npz file (opens the zip directory only)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return list(npz.files)
    except _READ_ERRORS as err:
        raise _corrupt(path, err) from err


def read_npz_arrays(path: Path, keys: Sequence[str], required_splits: Sequence[str] = ()) -> dict[str, np.ndarray]:
    """Read ``keys`` from an .npz file, with clear errors for bad files and missing keys.

    Args:
        path: the .npz file.
        keys: arrays to read.
        required_splits: splits whose ``*_images`` / ``*_labels`` must exist (checks the file is a
            complete MedMNIST-layout file, even when only one split is read).
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            needed = list(keys) + [f"{s}_{k}" for s in required_splits for k in ("images", "labels")]
            missing = [k for k in dict.fromkeys(needed) if k not in files]
            if missing:
                raise CorruptFileError(
                    f"{path} is not a MedMNIST-layout .npz: missing {missing} (it has {sorted(files)}). "
                    "Expected train_images, train_labels, val_images, val_labels, test_images, test_labels. "
                    "If it is a partial download, delete it and download it again."
                )
            return {k: npz[k] for k in keys}
    except CorruptFileError:
        raise
    except _READ_ERRORS as err:
        raise _corrupt(path, err) from err


def npz_array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array in an .npz, read from the headers only (no data is loaded)."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for member in zf.namelist():
                if not member.endswith(".npy"):
                    continue
                with zf.open(member) as f:
                    major, _ = np.lib.format.read_magic(f)
                    read = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
                    shape, _, dtype = read(f)
                out[member[:-4]] = (tuple(shape), dtype)
    except _READ_ERRORS as err:
        raise _corrupt(path, err) from err
    return out


def _describe_channels(shape: tuple[int, ...]) -> str:
    if len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1):
        return "grey"
    return "RGB" if len(shape) == 4 and shape[-1] == 3 else f"shape {shape}"


def check_same_channels(path: Path, splits: Sequence[str]) -> None:
    """Every split of the file must be all grey or all RGB (a model has one number of input channels)."""
    headers = npz_array_headers(path)
    kinds = {s: _describe_channels(headers[f"{s}_images"][0]) for s in splits if f"{s}_images" in headers}
    if len(set(kinds.values())) > 1:
        listing = ", ".join(f"{s}_images {kinds[s]} {headers[f'{s}_images'][0]}" for s in kinds)
        raise ValueError(
            f"{path}: the splits mix grey and colour images ({listing}). A model takes one kind of image, so every "
            "split must be grey (N, H, W) or every split RGB (N, H, W, 3). Convert the grey ones to RGB with "
            "np.repeat(images[..., None], 3, axis=-1), or the RGB ones to grey with images.mean(-1).astype(np.uint8)."
        )


def npz_splits(path: Path) -> tuple[str, ...]:
    """The splits an .npz file holds (those with both ``*_images`` and ``*_labels``)."""
    files = set(npz_keys(path))
    return tuple(s for s in SPLITS if f"{s}_images" in files and f"{s}_labels" in files)


def load_npz_split(path: Path, split: str, size: int | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load one split of your own MedMNIST-layout .npz.

    Class names come from the file's ``class_names`` key, else a sidecar ``<name>.class_names.json``,
    else ``"0" .. "K-1"`` with ``K = 1 + the largest label in any split``.

    Returns:
        images uint8 (N, size, size[, C]) (resized if ``size`` differs), labels int64 (N,), class names.
    """
    splits = npz_splits(path)
    if split not in splits:
        raise ValueError(
            f"{path} has no {split!r} split (it has {list(splits) or 'none'}). Valid splits: {list(SPLITS)}"
        )
    check_same_channels(path, splits)
    keys = [f"{split}_images"] + [f"{s}_labels" for s in splits]
    has_names = "class_names" in npz_keys(path)
    arrays = read_npz_arrays(path, keys + (["class_names"] if has_names else []))
    labels_by_split = {s: labels_to_1d(arrays[f"{s}_labels"], f"{path} [{s}]") for s in splits}
    n_classes = 1 + max((int(lab.max()) for lab in labels_by_split.values() if lab.size), default=-1)
    sidecar = path.with_name(path.stem + ".class_names.json")
    if has_names:
        class_names = tuple(str(n) for n in arrays["class_names"].reshape(-1))
    elif sidecar.is_file():
        class_names = read_class_names(sidecar, n_classes) or ()
    else:
        class_names = tuple(str(i) for i in range(n_classes))
    if len(class_names) < n_classes:
        raise ValueError(f"{path}: labels go up to {n_classes - 1} but only {len(class_names)} class names are given")
    images = _check_images(arrays[f"{split}_images"], path, split)
    labels = labels_by_split[split]
    if len(images) != len(labels):
        raise CorruptFileError(f"{path}: {split}_images has {len(images)} rows but {split}_labels has {len(labels)}")
    if size is not None:
        images = resize_images(images, size)
    return images, labels, class_names


def _check_images(images: np.ndarray, path: Path, split: str) -> np.ndarray:
    try:
        return to_medmnist_layout(images)
    except ValueError as err:
        raise ValueError(f"{path} [{split}_images]: {err}") from err


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------
def save_npz(
    path: str | os.PathLike,
    splits: Mapping[str, Any],
    class_names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Atomically write image splits to an .npz in MedMNIST layout (loadable by ``load_dataset(path)``).

    Args:
        path: output file (should end in ``.npz``); its folder is created.
        splits: ``{"train": (images, labels), "test": ...}`` with any subset of train / val / test.
            Each value is an ``(images, labels)`` pair or anything with ``.images`` and ``.labels``
            (an ``ImageData``). Images: a torch tensor (B, C, H, W) / (B, H, W), or a NumPy array in
            MedMNIST layout; floats in [0, 1] or uint8. Labels: (N,) or (N, 1) integers.
        class_names: optional names, index = label; stored under the key ``class_names``.
        metadata: optional JSON-serialisable dict (e.g. the config that generated the samples),
            stored as a JSON string under ``metadata_json``.

    Returns:
        ``Path(path)``. The file appears only once it is completely written.
    """
    if not splits:
        raise ValueError("splits is empty: give at least one of 'train', 'val', 'test'")
    arrays: dict[str, np.ndarray] = {}
    shape: tuple[int, ...] | None = None
    max_label = -1
    for split, value in splits.items():
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {list(SPLITS)}")
        images, labels = (value.images, value.labels) if hasattr(value, "images") else value
        imgs = to_medmnist_layout(images)
        if isinstance(labels, torch.Tensor):
            labels = labels.detach().cpu().numpy()
        labs = labels_to_1d(np.asarray(labels), f"save_npz [{split}]")
        if len(imgs) != len(labs):
            raise ValueError(f"split {split!r}: {len(imgs)} images but {len(labs)} labels")
        if shape is not None and imgs.shape[1:] != shape:
            raise ValueError(f"all splits must have the same image shape; got {shape} and {imgs.shape[1:]}")
        shape = imgs.shape[1:]
        max_label = max(max_label, int(labs.max()) if labs.size else -1)
        arrays[f"{split}_images"] = imgs
        arrays[f"{split}_labels"] = labs.astype(np.uint8 if labs.size == 0 or labs.max() < 256 else np.int64)[:, None]
    if class_names is not None:
        if len(class_names) <= max_label:
            raise ValueError(f"labels go up to {max_label} but only {len(class_names)} class names were given")
        arrays["class_names"] = np.array([str(n) for n in class_names], dtype=str)
    if metadata is not None:
        arrays["metadata_json"] = np.array(json.dumps(dict(metadata), default=str))
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:  # a file object, so NumPy does not append another ".npz"
            np.savez_compressed(f, **arrays)
    return Path(path)
