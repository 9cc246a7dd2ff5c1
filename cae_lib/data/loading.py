"""``load_dataset``: one entry point for MedMNIST, ``digits``, your own folder or .npz file.

    >>> data = load_dataset("pneumoniamnist", split="test")      # doctest: +SKIP
    >>> data.images.shape, data.images.dtype, data.n_classes      # doctest: +SKIP
    ((624, 28, 28), dtype('uint8'), 2)

The name decides where the data comes from: a registry name is a MedMNIST file (downloaded and
checked by :mod:`cae_lib.data.download`) or the bundled ``digits`` (:mod:`cae_lib.data.digits`);
anything else is a path to your own folder or .npz (:mod:`cae_lib.data.npz`, :mod:`cae_lib.data.folder`). Every route
returns an :class:`~cae_lib.data.image_data.ImageData`. :func:`load_raw` and :func:`load_labels`
read parts of a file without building one.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from cae_lib.data.digits import load_digits_split
from cae_lib.data.download import ensure_file
from cae_lib.data.errors import (
    CorruptFileError,
    DatasetFallbackWarning,
    DatasetUnavailableError,
)
from cae_lib.data.folder import load_folder
from cae_lib.data.image_data import ImageData, Indices
from cae_lib.data.layout import check_split, labels_to_1d, stratified_split
from cae_lib.data.mmap import open_npz_member, should_mmap
from cae_lib.data.npz import load_npz_split, read_npz_arrays
from cae_lib.data.provenance import looks_like_path
from cae_lib.data.registry import SPLITS, DatasetInfo, get_info


def _multi_label_error(info: DatasetInfo) -> ValueError:
    return ValueError(
        f"{info.display_name} is a {info.task} task ({info.n_classes} yes/no findings per image), so a single "
        "label per image (labels of shape (N,)) is not defined. cae-lib handles single-label tasks only. "
        "Alternatives: pneumoniamnist (chest X-ray, normal vs pneumonia), or another single-label set "
        "(pathmnist, dermamnist, octmnist, bloodmnist, organamnist, ...); to inspect the raw multi-label "
        f"arrays use cae_lib.data.load_raw({info.name!r}, split)."
    )


def _check_name(name: object) -> None:
    """An empty name would silently load the current folder: refuse it, listing what is valid."""
    if isinstance(name, str) and not name.strip():
        raise ValueError(
            "The dataset name is empty. Pass a dataset name (e.g. 'pneumoniamnist', 'breastmnist', 'digits'; "
            "see `python -m cae_lib datasets`), a folder with one sub-folder per class, or an .npz file "
            "(write '.' for the current folder)."
        )


def _check_size_value(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer number of pixels, got {size!r}")
    return int(size)


def load_dataset(
    name: str | os.PathLike | DatasetInfo,
    split: str = "train",
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    fallback: str | None = None,
    *,
    timeout: float = 30.0,
    progress: bool = True,
) -> ImageData:
    """Load one split of a dataset as uint8 images and int64 labels.

    Args:
        name: a registry name, any case (``"pneumoniamnist"``, ``"PneumoniaMNIST"``, ``"digits"``;
            see :func:`cae_lib.data.dataset_names`); or a path to your own data: a folder with one
            sub-folder per class, or an .npz in MedMNIST layout; or a :class:`DatasetInfo`.
            Registry names win over same-named local folders (write ``./digits`` for the folder).
        split: ``"train"``, ``"val"`` or ``"test"``. Your own folders are split 70/10/20 (stratified, seed 0).
        size: image size in px. MedMNIST: 28, 64, 128 or 224. ``digits``: 28 only. Your own data is
            resized to ``size`` x ``size``.
        data_dir: folder with the MedMNIST files; default ``$CAE_DATA_DIR``, else
            ``~/.cache/cae_lib/medmnist`` (see :func:`resolve_data_dir`).
        download: fetch a missing file (timeout, ``.part`` file, MD5 check, atomic rename) and verify
            the MD5 of an existing one. With ``download=False`` a missing file is an error and an
            existing file is trusted if it opens and has the MedMNIST keys.
        fallback: a bundled dataset (``"digits"``) to return, with a warning and ``.notice``, when
            the requested file cannot be had (offline, server down, bad file). ``None``: raise.
        timeout: seconds a download may wait for data before it is abandoned as stalled.
        progress: show a progress bar while downloading.

    Returns:
        An :class:`ImageData`: ``images`` uint8 (N, H, W) or (N, H, W, C), ``labels`` int64 (N,).

    Raises:
        ValueError: unknown name (lists the valid ones), unsupported size or split, multi-label
            dataset (ChestMNIST), or a malformed custom dataset.
        DatasetUnavailableError: the file is missing and cannot be downloaded (message: URL, MD5,
            folder, ``CAE_DATA_DIR``, ``fallback="digits"``); subclasses ``ChecksumError`` (MD5
            mismatch) and ``CorruptFileError`` (truncated / corrupted file).
    """
    check_split(split)
    size = _check_size_value(size)
    _check_name(name)
    if looks_like_path(name):
        return _load_custom(Path(name).expanduser(), split, size)
    info = name if isinstance(name, DatasetInfo) else get_info(str(name))
    if not isinstance(name, DatasetInfo) and Path(str(name)).is_dir():
        warnings.warn(
            f"{name!r} is a MedMNIST name, so the official {info.display_name} is loaded, not the folder ./{name} "
            f"here; to use the folder, pass it as a path: './{name}' (--dataset ./{name}).",
            stacklevel=2,
        )
    fallback_info = _check_fallback(fallback)
    info.check_size(size)
    if info.is_multi_label:
        raise _multi_label_error(info)
    if info.is_bundled:
        return load_digits_split(split, size)
    try:
        path = ensure_file(info, size, data_dir, download, timeout=timeout, progress=progress)
        images, labels = _read_official_split(path, info, split)
    except DatasetUnavailableError as err:
        if fallback_info is None:
            raise
        return _use_fallback(fallback_info, info, split, size, err)
    return ImageData(
        images=images, labels=labels, name=info.name, split=split,
        class_names=info.class_names, task=info.task, source=str(path),
    )


def _check_fallback(fallback: str | None) -> DatasetInfo | None:
    if fallback is None:
        return None
    fb = get_info(fallback)
    if not fb.is_bundled:
        raise ValueError(f"fallback must be a dataset that needs no download ('digits'); got {fallback!r}")
    return fb


def _use_fallback(fb: DatasetInfo, info: DatasetInfo, split: str, size: int, err: Exception) -> ImageData:
    if size not in fb.sizes:
        raise DatasetUnavailableError(
            f"{err}\n\nThe fallback {fb.name!r} exists only at {', '.join(map(str, fb.sizes))} px, so it cannot "
            f"stand in at size {size}."
        ) from err
    reason = str(err).splitlines()[0]
    notice = (
        f"{info.display_name} is unavailable ({reason}) -> using the bundled {fb.name!r} dataset instead "
        f"({fb.n_classes} classes, {size}x{size}). Results are about {fb.name}, NOT {info.display_name}. "
        f"Run load_dataset({info.name!r}) without fallback to see how to get the file."
    )
    warnings.warn(notice, DatasetFallbackWarning, stacklevel=3)
    data = load_digits_split(split, size)
    data.source = f"sklearn digits (fallback for {info.name})"
    data.notice = notice
    return data


def _read_official_split(path: Path, info: DatasetInfo, split: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one split of a registry file; check keys, layout and label range.

    Images larger than the memory budget are memory-mapped (:mod:`cae_lib.data.mmap`).
    """
    key = f"{split}_images"
    if should_mmap(path, key):
        raw = read_npz_arrays(path, [f"{split}_labels"], required_splits=SPLITS)[f"{split}_labels"]
        images = open_npz_member(path, key)
    else:
        arrays = read_npz_arrays(path, [key, f"{split}_labels"], required_splits=SPLITS)
        images, raw = arrays[key], arrays[f"{split}_labels"]
    rgb_ok = images.ndim == 3 or (images.ndim == 4 and images.shape[-1] in (1, 3))
    if images.dtype != np.uint8 or not rgb_ok or len(images) != len(raw):
        raise CorruptFileError(
            f"{path}: {split}_images is {images.dtype} {images.shape} with {len(raw)} labels; expected uint8 "
            "(N, H, W) or (N, H, W, 3) and one label per image. Delete the file and download it again."
        )
    if images.ndim == 4 and images.shape[-1] == 1:
        images = images[..., 0]
    labels = labels_to_1d(raw, f"{path} [{split}]")
    if labels.size and labels.max() >= info.n_classes:
        raise CorruptFileError(
            f"{path}: labels go up to {labels.max()} but {info.display_name} has {info.n_classes} classes. "
            "Is this the right file? Delete it and download it again."
        )
    return images, labels


def _load_custom(path: Path, split: str, size: int) -> ImageData:
    path = path.resolve()  # ``source`` is absolute, so the data can be found again from any folder
    if path.is_dir():
        images, labels, class_names = load_folder(path, size)
        rows = stratified_split(labels)
        _check_folder_splits(path, labels, class_names, rows)
        task = "binary-class" if len(class_names) == 2 else "multi-class"
        return ImageData(images[rows[split]], labels[rows[split]], path.name, split, class_names, task, str(path))
    if path.is_file():
        images, labels, class_names = load_npz_split(path, split, size)
        task = "binary-class" if len(class_names) == 2 else "multi-class"
        name = path.name[:-4] if path.name.lower().endswith(".npz") else path.name
        return ImageData(images, labels, name, split, class_names, task, str(path))
    raise FileNotFoundError(
        f"{path} does not exist. Pass a dataset name (e.g. 'pneumoniamnist', 'breastmnist', 'digits'; "
        "see cae_lib.data.dataset_names()), a folder with one sub-folder per class, or an .npz file in MedMNIST layout."
    )


def _check_folder_splits(path: Path, labels: np.ndarray, class_names: tuple[str, ...], rows: dict[str, np.ndarray]) -> None:
    """Every split of a folder dataset must get images; otherwise say how many each class needs."""
    empty = [s for s in SPLITS if len(rows[s]) == 0]
    if not empty:
        return
    counts = ", ".join(f"{name}: {int((labels == c).sum())}" for c, name in enumerate(class_names))
    raise ValueError(
        f"{path} has too few images to split: {len(labels)} in all ({counts}). Each class is split "
        f"70 / 10 / 20 % into train / val / test, which leaves the {' and '.join(empty)} split empty. "
        "Give every class at least 5 images (10 or more is better), or make your own splits in an .npz file "
        "(cae_lib.data.save_npz)."
    )


def load_raw(
    name: str | DatasetInfo,
    split: str = "train",
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """The arrays of a MedMNIST file exactly as stored, e.g. ChestMNIST's (N, 14) multi-label targets.

    Returns:
        images uint8 (N, H, W[, C]) and labels as stored (uint8, (N, 1) or (N, n_labels)).
    """
    info = name if isinstance(name, DatasetInfo) else get_info(name)
    check_split(split)
    if info.is_bundled:
        data = load_digits_split(split, size)
        return data.images, data.labels[:, None]
    path = ensure_file(info, size, data_dir, download)
    arrays = read_npz_arrays(path, [f"{split}_images", f"{split}_labels"], required_splits=SPLITS)
    return arrays[f"{split}_images"], arrays[f"{split}_labels"]


def load_labels(
    name: str | os.PathLike | DatasetInfo,
    split: str = "train",
    size: int = 28,
    data_dir: str | os.PathLike | None = None,
    download: bool = False,
) -> tuple[np.ndarray, tuple[str, ...]]:
    """Only the labels of a split (int64 (N,)) and the class names: cheap, images are not read."""
    check_split(split)
    if looks_like_path(name) or (not isinstance(name, DatasetInfo) and get_info(str(name)).is_bundled):
        data = load_dataset(name, split, size, data_dir, download)
        return data.labels, data.class_names
    info = name if isinstance(name, DatasetInfo) else get_info(str(name))
    if info.is_multi_label:
        raise _multi_label_error(info)
    path = ensure_file(info, size, data_dir, download)
    raw = read_npz_arrays(path, [f"{split}_labels"], required_splits=SPLITS)[f"{split}_labels"]
    return labels_to_1d(raw, f"{path} [{split}]"), info.class_names


__all__ = [
    "ImageData",
    "Indices",
    "load_dataset",
    "load_digits_split",
    "load_labels",
    "load_raw",
]
