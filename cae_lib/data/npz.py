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
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from cae_lib.data.errors import CorruptFileError
from cae_lib.data.layout import center_square, labels_to_1d, read_class_names, resize_images, to_medmnist_layout
from cae_lib.data.registry import SPLITS
from cae_lib.files import atomic_path

_READ_ERRORS = (zipfile.BadZipFile, zlib.error, OSError, ValueError, EOFError, KeyError)


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _corrupt(path: Path, err: BaseException | str) -> CorruptFileError:
    return CorruptFileError(
        f"{path} cannot be read as an .npz dataset ({err}). It is probably truncated or corrupted: "
        "delete it and download it again (or re-create it)."
    )


#: The first bytes of files that people save under an .npz name by mistake, and what they are.
_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\x93NUMPY", "a single NumPy array (.npy, written by np.save), not an .npz of named arrays"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"\x80", "a Python pickle"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"%PDF", "a PDF document"),
    (b"\x89HDF", "an HDF5 file"),
)


def _check_is_zip(path: Path) -> None:
    """An .npz is a zip archive: say what the file is instead when it is not one (text, .npy, PNG...)."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError as err:
        raise _corrupt(path, err) from err
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06")):
        return
    kind = next((what for magic, what in _SIGNATURES if head.startswith(magic)), None)
    if not head:
        kind = "empty (0 bytes)"
    elif kind is None:
        text = head.decode("utf-8", errors="replace")
        is_text = "\ufffd" not in text and all(c.isprintable() or c.isspace() for c in text)
        kind = f"a text file (it starts with {(text.strip().splitlines() or [''])[0][:30]!r})" if is_text else "not a zip archive"
    raise CorruptFileError(
        f"{path} is not an .npz file: it is {kind}. An .npz is a zip of named arrays, written by "
        "np.savez(path, train_images=..., train_labels=..., val_images=..., ...) or cae_lib.data.save_npz; "
        "re-create it that way. If it is a partial download, delete it and download it again."
    )


def _object_array_error(path: Path, key: str) -> CorruptFileError:
    return CorruptFileError(
        f"{path}: {key} holds Python objects (dtype=object), and cae-lib never unpickles data from a file (a pickle "
        "can run code). Save plain numbers instead: labels as np.asarray(labels, dtype=np.int64), images as uint8."
    )


def npz_keys(path: Path) -> list[str]:
    """The array names in an .npz file (opens the zip directory only)."""
    _check_is_zip(path)
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
    _check_is_zip(path)
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
            return {k: _read_member(npz, k, path) for k in keys}
    except CorruptFileError:
        raise
    except _READ_ERRORS as err:
        raise _corrupt(path, err) from err


def _read_member(npz: Any, key: str, path: Path) -> np.ndarray:
    try:
        return npz[key]
    except ValueError as err:
        if "allow_pickle" in str(err):
            raise _object_array_error(path, key) from err
        raise


def npz_array_headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """``{key: (shape, dtype)}`` of every array in an .npz, read from the headers only (no data is loaded)."""
    out: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
    _check_is_zip(path)
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


#: Other names people give a split's images and labels (x_train, y_test, train_x, X_valid, ...).
_SPLIT_WORDS = {"train": {"train", "training", "tr"}, "val": {"val", "valid", "validation", "dev"}, "test": {"test", "testing", "te"}}
_KIND_WORDS = {"images": {"x", "images", "image", "imgs", "img", "data", "inputs"}, "labels": {"y", "labels", "label", "targets", "target"}}


def _guess_renames(keys: Sequence[str]) -> dict[str, str]:
    """``{"x_train": "train_images", "y_train": "train_labels", ...}`` for keys that look like another naming."""
    out = {}
    for key in keys:
        words = set(re.split(r"[^a-z]+", key.lower()))
        split = next((s for s, names in _SPLIT_WORDS.items() if words & names), None)
        kind = next((k for k, names in _KIND_WORDS.items() if words & names), None)
        if split and kind:
            out[key] = f"{split}_{kind}"
    return out


def _no_layout_keys(path: Path, keys: Sequence[str]) -> ValueError:
    renames = _guess_renames(keys)
    if renames:
        mapping = ", ".join(f"{old} -> {new}" for old, new in renames.items())
        example = ", ".join(f"{new}=d[{old!r}]" for old, new in renames.items())
        how = f" They look like {mapping}: d = np.load({str(path)!r}); np.savez('renamed.npz', {example})."
    else:
        how = " Save them under those names: np.savez('mine.npz', train_images=..., train_labels=..., val_images=..., ...)."
    return ValueError(
        f"{path} has none of the MedMNIST-layout keys train_images, train_labels, val_images, val_labels, test_images, "
        f"test_labels; it has {sorted(keys) or 'no arrays'}.{how}"
    )


def check_npz_layout(
    path: Path, needed: Sequence[str] = ()
) -> tuple[tuple[str, ...], dict[str, tuple[tuple[int, ...], np.dtype]]]:
    """Check every split of your own .npz from the array headers alone (no image is read), before any work.

    Each split needs both ``*_images`` and ``*_labels`` and one label per image; the splits in
    ``needed`` (training needs train and val) need at least one image; all splits must be grey or
    all RGB. Other splits may be empty (``save_samples_npz(..., empty_other_splits=True)`` writes such files).

    Returns:
        the splits the file holds, and ``{key: (shape, dtype)}`` of its arrays.
    """
    headers = npz_array_headers(path)
    splits = tuple(s for s in SPLITS if f"{s}_images" in headers or f"{s}_labels" in headers)
    if not splits:
        raise _no_layout_keys(path, list(headers))
    for s in splits:
        have, lack = (f"{s}_images", f"{s}_labels") if f"{s}_images" in headers else (f"{s}_labels", f"{s}_images")
        if lack not in headers:
            raise ValueError(
                f"{path} has {have} but no {lack}: a split needs its images and one label per image. Add {lack} "
                f"(np.savez with all the arrays), or leave out {have} to drop the {s} split."
            )
        n_images, n_labels = (headers[f"{s}_{k}"][0][0] if headers[f"{s}_{k}"][0] else None for k in ("images", "labels"))
        if n_images is not None and n_labels is not None and n_images != n_labels:  # scalars are refused later
            raise CorruptFileError(
                f"{path}: {s}_images has {n_images} images but {s}_labels has {n_labels} labels; every image "
                "needs exactly one label, in the same order. Re-create the file from matching arrays (save_npz checks this)."
            )
        if n_images == 0 and s in needed:
            raise ValueError(
                f"{path}: the {s} split is empty (0 images). Every split needs images (training uses train and val, "
                "evaluate uses test): cut your labelled images into three with cae_lib.data.stratified_split(labels) "
                "and save them with save_npz."
            )
    check_same_channels(path, splits)
    return splits, headers


def _class_names(
    path: Path, labels_by_split: Mapping[str, np.ndarray], stored: np.ndarray | None, for_training: bool
) -> tuple[str, ...]:
    """The class names (stored, sidecar, or ``"0" .. "K-1"``).

    ``for_training``: also refuse what would make training and evaluation count the classes wrongly:
    unnamed labels that skip numbers ({0, 2, 7} would be 8 classes), and a single class.
    """
    present = np.unique(np.concatenate([lab for lab in labels_by_split.values()]))
    n_classes = 1 + int(present.max())
    sidecar = path.with_name(path.stem + ".class_names.json")
    if stored is not None:
        names = tuple(str(n) for n in stored.reshape(-1))
    elif sidecar.is_file():
        names = read_class_names(sidecar, n_classes) or ()
    else:
        names = tuple(str(i) for i in range(n_classes))
        if for_training and len(present) < n_classes:
            empty = [c for c in range(n_classes) if c not in set(present.tolist())]
            raise ValueError(
                f"{path}: the labels are {_some(present)} (over all splits), so classes {_some(empty)} have no images. "
                f"Without class names cae-lib counts classes 0 .. K-1, here {n_classes} classes where there are "
                f"{len(present)}, which skews the clustering and every score. Renumber them to 0 .. {len(present) - 1} "
                "(np.unique(labels, return_inverse=True) over all splits together), or, if the empty classes are meant, "
                f"name all {n_classes} classes (class_names= in save_npz, or a {sidecar.name} list)."
            )
    if len(names) < n_classes:
        raise ValueError(
            f"{path}: labels go up to {n_classes - 1} but only {len(names)} class names are given ({_some(names)}); "
            "give one name per class, in label order."
        )
    if for_training and len(names) < 2:
        raise ValueError(
            f"{path}: every image has label {int(present[0])}, so there is only one class ({names[0]!r}); cae-lib needs "
            "at least 2 (evaluate clusters the codes into the classes and trains probes to tell them apart). "
            "Add images of another class, labelled 1."
        )
    return names


def _some(values: Sequence[Any] | np.ndarray, n: int = 10) -> str:
    shown = ", ".join(str(v) for v in list(values)[:n])
    return "{" + shown + (", ..." if len(values) > n else "") + "}"


def load_npz_split(path: Path, split: str, size: int | None) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Load one split of your own MedMNIST-layout .npz, after checking the whole file.

    Every split is checked (:func:`check_npz_layout`, labels, non-uint8 images), so a problem in
    ``test`` is found before training rather than after it. Class names come from the file's
    ``class_names`` key, else a sidecar ``<name>.class_names.json``, else ``"0" .. "K-1"`` with
    ``K = 1 + the largest label in any split``. Loading the train split (what training does) also
    refuses a single class and, without class names, labels that skip numbers (``{0, 2, 7}`` would
    count 8 classes); a val or test split alone may be inspected as it is.
    Non-square images are centre-cropped to a square (as in folder datasets), then resized to ``size``.

    Returns:
        images uint8 (N, size, size[, C]) (resized if ``size`` differs), labels int64 (N,), class names.
    """
    splits, headers = check_npz_layout(path, needed=("train", "val") if split == "train" else ())
    if split not in splits:
        raise ValueError(
            f"{path} has no {split!r} split (it has {list(splits)}). cae-lib trains on train and val and evaluates "
            f"on test: add {split}_images and {split}_labels, e.g. cut your labelled images into three with "
            "cae_lib.data.stratified_split(labels) and save them with save_npz."
        )
    keys = [f"{split}_images"] + [f"{s}_labels" for s in splits]
    has_names = "class_names" in headers
    arrays = read_npz_arrays(path, keys + (["class_names"] if has_names else []))
    labels_by_split = {s: labels_to_1d(arrays[f"{s}_labels"], f"{path} [{s}_labels]") for s in splits}
    class_names = _class_names(path, labels_by_split, arrays["class_names"] if has_names else None, split == "train")
    for s in splits:  # uint8 images are valid as stored; any other kind is checked in every split now
        if s != split and headers[f"{s}_images"][1] != np.uint8:
            _check_images(read_npz_arrays(path, [f"{s}_images"])[f"{s}_images"], path, s)
    images = _check_images(arrays[f"{split}_images"], path, split)
    labels = labels_by_split[split]
    if size is not None:
        images = resize_images(center_square(images), size)
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
