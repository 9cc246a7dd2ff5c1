"""``load_dataset``: one entry point for MedMNIST, ``digits``, your own folder or .npz file.

    >>> data = load_dataset("pneumoniamnist", split="test")      # doctest: +SKIP
    >>> data.images.shape, data.images.dtype, data.n_classes      # doctest: +SKIP
    ((624, 28, 28), dtype('uint8'), 2)
    >>> x = data.to_tensor([0, 1, 2])                             # doctest: +SKIP
    >>> x.shape, x.dtype                                          # doctest: +SKIP
    (torch.Size([3, 1, 28, 28]), torch.float32)

Images stay uint8 in memory (PathMNIST as float32 would be ~1 GB, more than Binder allows);
only the rows of a batch are converted to float in [0, 1].
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, Union

import numpy as np
import torch

from cae_lib.data.custom import labels_to_1d, load_folder, load_npz_split, read_npz_arrays, stratified_split
from cae_lib.data.download import ensure_file
from cae_lib.data.errors import CorruptFileError, DatasetFallbackWarning, DatasetUnavailableError
from cae_lib.data.registry import (
    DIGITS_FRACTIONS,
    DIGITS_SEED,
    SPLITS,
    DatasetInfo,
    get_info,
    is_registered,
)

#: Row selectors accepted by :meth:`ImageData.to_tensor` and :meth:`ImageData.subset`.
Indices = Union[None, int, slice, Sequence[int], np.ndarray, torch.Tensor]


@dataclass(eq=False)
class ImageData:
    """One split of an image dataset, images kept as uint8.

    Attributes:
        images: uint8, (N, H, W) for grey or (N, H, W, C) for RGB: the MedMNIST layout.
        labels: int64, (N,), values in ``0 .. n_classes - 1``.
        name: dataset name (``"pneumoniamnist"``, ``"digits"``, or the file / folder name).
        split: ``"train"``, ``"val"`` or ``"test"``.
        class_names: one name per class, index = label.
        task: ``"binary-class"``, ``"multi-class"``, ``"ordinal-regression"``.
        source: where the data came from (a file path, a folder, or ``"sklearn digits"``).
        notice: set when something unusual happened (e.g. a fallback was used); else ``None``.
    """

    images: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)
    name: str
    split: str
    class_names: tuple[str, ...]
    task: str = "multi-class"
    source: str = ""
    notice: str | None = None

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        if images.ndim == 4 and images.shape[-1] == 1:
            images = images[..., 0]
        if images.dtype != np.uint8 or images.ndim not in (3, 4) or (images.ndim == 4 and images.shape[-1] != 3):
            raise ValueError(f"images must be uint8 (N, H, W) or (N, H, W, 3); got {images.dtype} {images.shape}")
        labels = np.asarray(self.labels).astype(np.int64, copy=False).reshape(-1)
        if len(labels) != len(images):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        if labels.size and (labels.min() < 0 or labels.max() >= len(self.class_names)):
            raise ValueError(
                f"labels must lie in 0..{len(self.class_names) - 1} (one per class name); "
                f"got {labels.min()}..{labels.max()}"
            )
        self.images, self.labels, self.class_names = images, labels, tuple(self.class_names)

    # -- shape facts -----------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Image height (= width) in pixels."""
        return int(self.images.shape[1])

    @property
    def n_channels(self) -> int:
        """1 for grey, 3 for RGB."""
        return 1 if self.images.ndim == 3 else int(self.images.shape[-1])

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W): the shape of one image as a model sees it."""
        return (self.n_channels, int(self.images.shape[1]), int(self.images.shape[2]))

    def __len__(self) -> int:
        return len(self.images)

    def __repr__(self) -> str:
        c, h, w = self.image_shape
        notice = f", notice={self.notice!r}" if self.notice else ""
        return (
            f"ImageData(name={self.name!r}, split={self.split!r}, n={len(self)}, image_shape=({c}, {h}, {w}), "
            f"n_classes={self.n_classes}, task={self.task!r}, source={self.source!r}{notice})"
        )

    # -- conversions -------------------------------------------------------------------------
    @staticmethod
    def _rows(indices: Indices) -> Any:
        if indices is None:
            return slice(None)
        if isinstance(indices, int):
            return [indices]
        if isinstance(indices, torch.Tensor):
            return indices.cpu().numpy()
        return indices

    def to_tensor(self, indices: Indices = None) -> torch.Tensor:
        """Convert the requested rows (all by default) to a float tensor.

        Args:
            indices: ``None`` (all rows), an int, a slice, or a sequence / array / tensor of row indices.

        Returns:
            x: float32, (B, C, H, W), values in [0, 1].
        """
        x = torch.from_numpy(np.ascontiguousarray(self.images[self._rows(indices)]))
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, still uint8
        return x.float().div_(255.0)

    def labels_tensor(self, indices: Indices = None) -> torch.Tensor:
        """The requested labels as a long tensor, (B,)."""
        return torch.from_numpy(np.ascontiguousarray(self.labels[self._rows(indices)]))

    def sample(self, n: int | None, seed: int = 0) -> "ImageData":
        """A seeded random subset of ``n`` rows (kept in their original order); the whole split when
        ``n`` is None or not smaller than the split. Handy for fast previews and FAST notebook runs."""
        if n is None or n >= len(self):
            return self
        return self.subset(np.sort(np.random.default_rng(seed).choice(len(self), n, replace=False)))

    def subset(self, indices: Indices) -> "ImageData":
        """A new ``ImageData`` with only the given rows (copies them; metadata kept)."""
        rows = self._rows(indices)
        return ImageData(
            images=np.ascontiguousarray(self.images[rows]),
            labels=np.ascontiguousarray(self.labels[rows]),
            name=self.name,
            split=self.split,
            class_names=self.class_names,
            task=self.task,
            source=self.source,
            notice=self.notice,
        )


# --------------------------------------------------------------------------------------------
# The bundled dataset: scikit-learn digits at 28 x 28
# --------------------------------------------------------------------------------------------
def _digits_all() -> tuple[np.ndarray, np.ndarray]:
    """All 1,797 sklearn digits as uint8 (N, 28, 28): 0..16 scaled to 0..255, bilinear 8 -> 28."""
    import torch.nn.functional as F
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)  # (N, 1, 8, 8) in [0, 1]
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False)
    images = (x[:, 0] * 255.0).round_().clamp_(0, 255).to(torch.uint8).numpy()
    return images, bunch.target.astype(np.int64)


def load_digits_split(split: str = "train", size: int = 28) -> ImageData:
    """scikit-learn's digits, resized to 28x28, split 70 / 10 / 20 (stratified, seed 0). Offline."""
    info = get_info("digits")
    info.check_size(size)
    _check_split(split)
    images, labels = _digits_all()
    rows = stratified_split(labels, DIGITS_FRACTIONS, DIGITS_SEED)[split]
    return ImageData(
        images=images[rows], labels=labels[rows], name="digits", split=split,
        class_names=info.class_names, task=info.task, source="sklearn digits",
    )


# --------------------------------------------------------------------------------------------
# The public entry point
# --------------------------------------------------------------------------------------------
def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"Unknown split {split!r}. Valid splits: {', '.join(SPLITS)}.")
    return split


def _looks_like_path(name: object) -> bool:
    """Registry names win; anything else with a path separator, an .npz suffix or on disk is a path."""
    if isinstance(name, os.PathLike):
        return True
    if not isinstance(name, str):
        return False
    if is_registered(name):
        return False
    seps = [os.sep] + ([os.altsep] if os.altsep else []) + ["/"]
    return any(s in name for s in seps) or name.lower().endswith(".npz") or Path(name).expanduser().exists()


def _multi_label_error(info: DatasetInfo) -> ValueError:
    return ValueError(
        f"{info.display_name} is a {info.task} task ({info.n_classes} yes/no findings per image), so a single "
        "label per image (labels of shape (N,)) is not defined. cae-lib handles single-label tasks only. "
        "Alternatives: pneumoniamnist (chest X-ray, normal vs pneumonia), or another single-label set "
        "(pathmnist, dermamnist, octmnist, bloodmnist, organamnist, ...); to inspect the raw multi-label "
        f"arrays use cae_lib.data.load_raw({info.name!r}, split)."
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
    _check_split(split)
    size = _check_size_value(size)
    if _looks_like_path(name):
        return _load_custom(Path(name).expanduser(), split, size)
    info = name if isinstance(name, DatasetInfo) else get_info(str(name))
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
    """Read one split of a registry file; check keys, layout and label range."""
    arrays = read_npz_arrays(path, [f"{split}_images", f"{split}_labels"], required_splits=SPLITS)
    images, raw = arrays[f"{split}_images"], arrays[f"{split}_labels"]
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
    if path.is_dir():
        images, labels, class_names = load_folder(path, size)
        rows = stratified_split(labels)[split]
        task = "binary-class" if len(class_names) == 2 else "multi-class"
        return ImageData(images[rows], labels[rows], path.name, split, class_names, task, str(path))
    if path.is_file():
        images, labels, class_names = load_npz_split(path, split, size)
        task = "binary-class" if len(class_names) == 2 else "multi-class"
        name = path.name[:-4] if path.name.lower().endswith(".npz") else path.name
        return ImageData(images, labels, name, split, class_names, task, str(path))
    raise FileNotFoundError(
        f"{path} does not exist. Pass a dataset name (e.g. 'pneumoniamnist', 'breastmnist', 'digits'; "
        "see cae_lib.data.dataset_names()), a folder with one sub-folder per class, or an .npz file in MedMNIST layout."
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
    _check_split(split)
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
    _check_split(split)
    if _looks_like_path(name) or (not isinstance(name, DatasetInfo) and get_info(str(name)).is_bundled):
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
    "load_dataset",
    "load_digits_split",
    "load_labels",
    "load_raw",
]
