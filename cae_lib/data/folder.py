"""Reading a folder of images, one sub-folder per class, into the MedMNIST layout.

    my_data/
        benign/     img001.png  img002.jpg ...
        malignant/  ...
        class_names.json        (optional: a list in label order, or {"folder": "display name"})

Each image is centre-cropped to a square, resized to ``size`` x ``size`` (bilinear), and kept grey
if every image is grey, RGB otherwise. Labels follow the sorted sub-folder names. Splitting into
train / val / test (70 / 10 / 20, stratified, fixed seed) is :func:`~cae_lib.data.layout.stratified_split`'s job.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cae_lib.data.errors import CorruptFileError
from cae_lib.data.layout import read_class_names

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _read_image(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 (size, size, 3): centre-cropped to a square, bilinear resize."""
    # Pillow is not a direct dependency of cae-lib (it comes with torchvision and matplotlib), and only
    # folder datasets need it, so it is imported here rather than with ``cae_lib.data``.
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
