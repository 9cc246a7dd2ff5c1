"""Reading a folder of images, one sub-folder per class, into the MedMNIST layout.

    my_data/
        benign/     img001.png  img002.jpg ...
        malignant/  ...
        class_names.json        (optional: a list in label order, or {"folder": "display name"})

Each image is turned upright (EXIF orientation), centre-cropped to a square, resized to ``size`` x ``size``
(bilinear), and kept grey if every image is grey, RGB otherwise (any mode: L, RGB, RGBA, palette, 16 bit;
the alpha channel is dropped). Labels follow the sorted sub-folder names. Splitting into
train / val / test (70 / 10 / 20, stratified, fixed seed) is :func:`~cae_lib.data.layout.stratified_split`'s job.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cae_lib.data.errors import CorruptFileError
from cae_lib.data.layout import read_class_names

IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff")


def _check_link(path: Path) -> None:
    """A link whose target is gone (or that loops) would silently drop an image or a class: refuse it."""
    if path.is_symlink() and not path.exists():
        raise CorruptFileError(
            f"{path} is a link to {os.readlink(path)}, which does not exist (or the links go round in a loop), so what "
            "it stands for cannot be read. Remove the link, or point it at an existing image or folder."
        )


def _check_no_loop(folder: Path) -> None:
    """A folder link back to a folder that holds it would make the dataset contain itself."""
    if folder.is_symlink() and folder.parent.resolve().is_relative_to(folder.resolve()):
        raise CorruptFileError(
            f"{folder} is a link to {os.readlink(folder)}, a folder that holds it, so the dataset would contain "
            "itself (a loop). Remove the link."
        )


def _image_files(folder: Path) -> list[Path]:
    """The images directly inside ``folder``, sorted; hidden files are skipped, a broken link is an error."""
    files = []
    for p in sorted(folder.iterdir()):
        if p.name.startswith("."):
            continue
        _check_link(p)
        if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS:
            files.append(p)
    return files


def _nested_images(class_dir: Path) -> list[tuple[Path, int]]:
    """``[(sub-folder, number of images in it at any depth), ...]``: images the loader would leave out."""
    found = []
    for sub in sorted(class_dir.iterdir()):
        if sub.name.startswith((".", "_")) or not sub.is_dir():
            continue
        _check_no_loop(sub)
        n = 0
        for _, dirs, names in os.walk(sub):  # links below ``sub`` are not followed, so the walk ends
            dirs[:] = [d for d in dirs if not d.startswith((".", "_"))]
            n += sum(not f.startswith(".") and Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in names)
        if n:
            found.append((sub, n))
    return found


def dataset_files(folder: Path) -> list[tuple[Path, list[Path]]]:
    """``[(class folder, its image files), ...]`` in label order: exactly the files :func:`load_folder` reads.

    Hidden entries (``.ipynb_checkpoints``, ``.DS_Store``, ``._x.png``) and folders starting with ``_``
    (``__MACOSX``) are skipped, and files that are not images (``README.txt``) are ignored. Anything that
    would silently leave images out is an error: images in sub-sub-folders, a broken link, a link loop.

    Raises:
        ValueError: no class sub-folders, only one, a class sub-folder without images, nested images.
        CorruptFileError: the folder cannot be read, a broken link or a link loop.
    """
    layout = (
        f"Expected one sub-folder per class, each holding images ({', '.join(IMAGE_EXTENSIONS)}):\n"
        f"  {folder}/<class A>/img1.png\n  {folder}/<class B>/img2.png ..."
    )
    try:
        loose = _image_files(folder)  # also checks the links at the top
        class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not d.name.startswith((".", "_")))
        for d in class_dirs:
            _check_no_loop(d)
        nested = [(d, _nested_images(d)) for d in class_dirs]
        files_per_class = [_image_files(d) for d in class_dirs]
    except OSError as err:
        raise CorruptFileError(f"cannot read the folder {folder}: {err}") from err
    if not class_dirs:
        found = f" It holds {len(loose)} images directly, but no class sub-folders." if loose else " It is empty."
        raise ValueError(f"{folder} has no class sub-folders, so there are no images to load.{found}\n{layout}")
    for d, subs in nested:
        if subs:
            listing = ", ".join(f"{sub.name}/: {n} images" for sub, n in subs[:3]) + (", ..." if len(subs) > 3 else "")
            raise ValueError(
                f"class folder {d} has images in sub-folders ({listing}), which would be left out: cae-lib reads only "
                f"the images directly inside each class folder. Move them up into {d.name}/ or delete those sub-folders; "
                f"if the sub-folders are the classes (a layout like {folder.name}/train/<class>/...), pass {d} as the dataset."
            )
    for d, files in zip(class_dirs, files_per_class):
        if not files:
            raise ValueError(f"class folder {d} contains no images. Add images or remove the folder.\n{layout}")
    if len(class_dirs) < 2:
        raise ValueError(
            f"{folder} has only one class sub-folder ({class_dirs[0].name}); a dataset needs at least 2 classes.\n{layout}"
        )
    return list(zip(class_dirs, files_per_class))


def _read_image(path: Path, size: int) -> np.ndarray:
    """One image file -> uint8 (size, size, 3): centre-cropped to a square, bilinear resize."""
    # Pillow is not a direct dependency of cae-lib (it comes with torchvision and matplotlib), and only
    # folder datasets need it, so it is imported here rather than with ``cae_lib.data``.
    from PIL import Image

    from PIL import ImageOps

    with Image.open(path) as im:
        im.load()
        im = ImageOps.exif_transpose(im)  # photos: turn as the camera meant (EXIF orientation), as viewers do
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
        ValueError: no class sub-folders, only one, a class sub-folder without images, or images in
            sub-sub-folders (see :func:`dataset_files`).
        CorruptFileError: the folder or an image cannot be read; a broken link or a link loop.
    """
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} is not a folder")
    classes = dataset_files(folder)
    class_dirs, files_per_class = [d for d, _ in classes], [f for _, f in classes]

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
