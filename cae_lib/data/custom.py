"""Reading and writing image datasets in the MedMNIST layout, and reading a folder of images.

The **MedMNIST layout** is an ``.npz`` file with the keys

    train_images, val_images, test_images   uint8, (N, H, W) for grey or (N, H, W, C) for RGB
    train_labels, val_labels, test_labels   integers, (N, 1) or (N,)

(plus, in files written by :func:`save_npz`, ``class_names`` and ``metadata_json``). Official
MedMNIST files, your own files and generated samples all use it, so they all load through
``load_dataset(path)``.

A **folder dataset** has one sub-folder per class:

    my_data/
        benign/     img001.png  img002.jpg ...
        malignant/  ...
        class_names.json        (optional: a list in label order, or {"folder": "display name"})

Each image is centre-cropped to a square, resized to ``size`` x ``size`` (bilinear), and kept grey
if every image is grey, RGB otherwise. Labels follow the sorted sub-folder names, and the images
are split 70 / 10 / 20 into train / val / test, stratified by class with a fixed seed.
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
import torch.nn.functional as F

from cae_lib.data.errors import CorruptFileError
from cae_lib.data.registry import SPLITS
from cae_lib.utils import atomic_path

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")
SPLIT_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)
SPLIT_SEED = 0
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError)


# --------------------------------------------------------------------------------------------
# Splitting
# --------------------------------------------------------------------------------------------
def stratified_split(
    labels: np.ndarray,
    fractions: Sequence[float] = SPLIT_FRACTIONS,
    seed: int = SPLIT_SEED,
) -> dict[str, np.ndarray]:
    """Split row indices into train / val / test, class by class, reproducibly.

    Within each class (in label order) the rows are shuffled with ``np.random.default_rng(seed)``;
    the first ``round(n * f_test)`` go to test, the next ``round(n * f_val)`` to val, the rest to train.

    Args:
        labels: (N,) integer labels.
        fractions: (train, val, test), summing to 1.
        seed: shuffling seed.

    Returns:
        ``{"train": idx, "val": idx, "test": idx}``, each a sorted int64 array.
    """
    labels = np.asarray(labels).reshape(-1)
    f_train, f_val, f_test = fractions
    if min(fractions) < 0 or abs(f_train + f_val + f_test - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {tuple(fractions)}")
    rng = np.random.default_rng(seed)
    parts: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for cls in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == cls))
        n_test = int(np.floor(len(idx) * f_test + 0.5))
        n_val = int(np.floor(len(idx) * f_val + 0.5))
        parts["test"].append(idx[:n_test])
        parts["val"].append(idx[n_test : n_test + n_val])
        parts["train"].append(idx[n_test + n_val :])
    return {s: np.sort(np.concatenate(p)).astype(np.int64) if p else np.zeros(0, np.int64) for s, p in parts.items()}


# --------------------------------------------------------------------------------------------
# Array conversions
# --------------------------------------------------------------------------------------------
def to_medmnist_layout(images: np.ndarray | torch.Tensor) -> np.ndarray:
    """Convert images to the MedMNIST layout: uint8, (N, H, W) grey or (N, H, W, C) RGB.

    Accepts:
        - a ``torch.Tensor`` (B, C, H, W) or (B, H, W): the toolkit's channels-first convention,
          e.g. decoder output;
        - a NumPy array already in MedMNIST layout, (N, H, W) or (N, H, W, C) with C in {1, 3}.

    Floats must lie in [0, 1] and are scaled to 0..255; integers must lie in 0..255.
    """
    if isinstance(images, torch.Tensor):
        t = images.detach().cpu()
        if t.is_floating_point():
            t = t.float()  # float16 / bfloat16 -> float32 (NumPy has no bfloat16)
        if t.dim() == 4:
            t = t.permute(0, 2, 3, 1)
        arr = t.numpy()
    else:
        arr = np.asarray(images)
    if arr.ndim == 4 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.ndim == 4 and arr.shape[-1] != 3:
        hint = ""
        if arr.shape[1] in (1, 3):
            hint = " It looks channels-first; use images.transpose(0, 2, 3, 1) (or pass a torch tensor)."
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C) with C in {{1, 3}}; got shape {arr.shape}.{hint}")
    if arr.ndim != 3 and arr.ndim != 4:
        raise ValueError(f"images must be (N, H, W) or (N, H, W, C); got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.size == 0:
        return arr.astype(np.uint8)
    lo, hi = float(arr.min()), float(arr.max())
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all() or lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(f"float images must lie in [0, 1]; got values in [{lo:.3g}, {hi:.3g}]")
        return np.clip(np.rint(arr * 255.0), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.integer) and 0 <= lo and hi <= 255:
        return arr.astype(np.uint8)
    raise ValueError(f"images must be uint8, integers in 0..255, or floats in [0, 1]; got {arr.dtype} in [{lo}, {hi}]")


def resize_images(images: np.ndarray, size: int, chunk: int = 1024) -> np.ndarray:
    """Resize MedMNIST-layout uint8 images to ``size`` x ``size`` (bilinear, antialiased), in chunks.

    Args:
        images: uint8 (N, H, W) or (N, H, W, C).
        size: output height and width.

    Returns:
        uint8 (N, size, size) or (N, size, size, C).
    """
    if images.shape[1:3] == (size, size):
        return images
    grey = images.ndim == 3
    out = np.empty((len(images), size, size) + (() if grey else (images.shape[-1],)), dtype=np.uint8)
    for start in range(0, len(images), chunk):
        x = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk]))
        x = x.unsqueeze(1) if grey else x.permute(0, 3, 1, 2)
        y = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        y = y.round_().clamp_(0, 255).to(torch.uint8)
        y = y[:, 0] if grey else y.permute(0, 2, 3, 1)
        out[start : start + chunk] = y.numpy()
    return out


def labels_to_1d(labels: np.ndarray, where: str) -> np.ndarray:
    """(N, 1) or (N,) integer labels -> int64 (N,). Multi-column (multi-label) labels are refused."""
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]
    if labels.ndim != 1:
        raise ValueError(
            f"{where}: labels have shape {labels.shape}; cae-lib needs one class per image, (N,) or (N, 1). "
            "Several columns mean a multi-label task, which this toolkit does not handle."
        )
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        if not np.all(np.mod(labels, 1) == 0):
            raise ValueError(f"{where}: labels must be integers, got {labels.dtype}")
    if labels.size and labels.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0, got minimum {labels.min()}")
    return labels.astype(np.int64)


# --------------------------------------------------------------------------------------------
# .npz files
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


def npz_splits(path: Path) -> tuple[str, ...]:
    """The splits an .npz file holds (those with both ``*_images`` and ``*_labels``)."""
    files = set(npz_keys(path))
    return tuple(s for s in SPLITS if f"{s}_images" in files and f"{s}_labels" in files)


def read_class_names(path: Path, n_classes: int, folder_names: Sequence[str] | None = None) -> tuple[str, ...] | None:
    """Read a ``class_names.json`` (a list in label order, or a dict ``{folder name: display name}``)."""
    try:
        names: Any = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: cannot read class names ({err}); expected a JSON list of strings") from err
    if isinstance(names, dict) and folder_names is not None:
        names = [str(names.get(f, f)) for f in folder_names]
    if not isinstance(names, list) or len(names) != n_classes:
        raise ValueError(f"{path} must hold a JSON list of {n_classes} class names (one per class, in label order)")
    return tuple(str(n) for n in names)


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


# --------------------------------------------------------------------------------------------
# Folders of images
# --------------------------------------------------------------------------------------------
def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _read_image(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 (size, size, 3): centre-cropped to a square, bilinear resize."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit / float: stretch to 0..255
            arr = np.asarray(im, dtype=np.float64)
            lo, hi = float(arr.min()), float(arr.max())
            arr = (arr - lo) / (hi - lo if hi > lo else 1.0) * 255.0
            im = Image.fromarray(np.rint(arr).astype(np.uint8), mode="L")
        rgb = im.convert("RGB")
    w, h = rgb.size
    s = min(w, h)
    left, top = (w - s) // 2, (h - s) // 2
    rgb = rgb.crop((left, top, left + s, top + s)).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(rgb, dtype=np.uint8)


def load_folder(folder: str | os.PathLike, size: int = 28) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Read every image of a one-sub-folder-per-class dataset.

    Returns:
        images uint8 (N, size, size) if all images are grey, else (N, size, size, 3);
        labels int64 (N,) (index of the sorted sub-folder); class names (from ``class_names.json``
        or the sub-folder names).

    Raises:
        FileNotFoundError: the folder does not exist.
        ValueError: no class sub-folders, or a class sub-folder without images.
        CorruptFileError: the folder or an image cannot be read.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    layout = (
        f"Expected one sub-folder per class, each holding images ({', '.join(IMAGE_EXTENSIONS)}):\n"
        f"  {folder}/<class A>/img1.png\n  {folder}/<class B>/img2.png ..."
    )
    try:
        class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
        files_per_class = [_image_files(d) for d in class_dirs]
        loose = _image_files(folder)
    except OSError as err:
        raise CorruptFileError(f"cannot read the folder {folder}: {err}") from err
    if not class_dirs:
        found = f" It holds {len(loose)} images directly, but no class sub-folders." if loose else " It is empty."
        raise ValueError(f"{folder} has no class sub-folders, so there are no images to load.{found}\n{layout}")
    for d, files in zip(class_dirs, files_per_class):
        if not files:
            raise ValueError(f"class folder {d} contains no images. Add images or remove the folder.\n{layout}")
    if len(class_dirs) < 2:
        raise ValueError(
            f"{folder} has only one class sub-folder ({class_dirs[0].name}); a dataset needs at least 2 classes.\n{layout}"
        )

    images, labels = [], []
    for label, files in enumerate(files_per_class):
        for f in files:
            try:
                images.append(_read_image(f, size))
            except Exception as err:  # PIL raises many kinds of errors for broken files
                raise CorruptFileError(
                    f"cannot read the image {f} ({type(err).__name__}: {err}). Delete or replace it."
                ) from err
            labels.append(label)
    x = np.stack(images)
    if np.array_equal(x[..., 0], x[..., 1]) and np.array_equal(x[..., 0], x[..., 2]):
        x = np.ascontiguousarray(x[..., 0])  # every image is grey: keep one channel
    names_file = folder / "class_names.json"
    folder_names = [d.name for d in class_dirs]
    names = read_class_names(names_file, len(class_dirs), folder_names) if names_file.is_file() else tuple(folder_names)
    return x, np.asarray(labels, dtype=np.int64), tuple(names or folder_names)
