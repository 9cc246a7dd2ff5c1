"""Your own data: an ``.npz`` in the MedMNIST layout, or a folder with one sub-folder per class.

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

The code lives in three modules, and every name is importable from here too:
:mod:`cae_lib.data.npz` (reading and writing ``.npz`` files), :mod:`cae_lib.data.folder` (reading
a folder of images) and :mod:`cae_lib.data.layout` (converting arrays to the layout, splitting).
"""

from cae_lib.data.folder import IMAGE_EXTENSIONS, load_folder
from cae_lib.data.layout import (
    SPLIT_FRACTIONS,
    SPLIT_SEED,
    labels_to_1d,
    read_class_names,
    resize_images,
    stratified_split,
    to_medmnist_layout,
)
from cae_lib.data.npz import load_npz_split, npz_keys, npz_splits, read_npz_arrays, save_npz

__all__ = [
    "IMAGE_EXTENSIONS",
    "SPLIT_FRACTIONS",
    "SPLIT_SEED",
    "labels_to_1d",
    "load_folder",
    "load_npz_split",
    "npz_keys",
    "npz_splits",
    "read_class_names",
    "read_npz_arrays",
    "resize_images",
    "save_npz",
    "stratified_split",
    "to_medmnist_layout",
]
