"""Datasets for cae-lib: MedMNIST 2D, the offline ``digits``, and your own folder or .npz.

Start here:

- :func:`load_dataset` ``(name, split="train", size=28, data_dir=None, download=True, fallback=None)``
  -> :class:`ImageData` (uint8 images in MedMNIST layout, int64 labels, ``.to_tensor()``).
- batches for a model come from :mod:`cae_lib.batches` (``ImageBatches.from_data(data)``).
- :func:`list_datasets` / :func:`format_dataset_table`: what exists and what is on disk.
- :func:`summarize` / :func:`class_balance`: class counts and the majority-class floor.
- :func:`save_npz`: write images (e.g. generated samples) in MedMNIST layout, loadable by ``load_dataset(path)``.

Where the files live: ``data_dir`` argument, else ``$CAE_DATA_DIR``, else ``~/.cache/cae_lib/medmnist``
(:func:`resolve_data_dir`). Downloads time out, go to a ``.part`` file, are MD5-checked and then renamed
atomically (:mod:`cae_lib.data.download`). Nothing happens at import time.

Modules: ``registry`` (what each dataset is), ``paths`` (where files live), ``checksums`` (MD5s,
remembered in the cache), ``download`` (files on the network), your own data in ``npz`` (reading and writing .npz
files), ``folder`` (a folder of images) and ``layout`` (arrays to the MedMNIST layout, splits), ``image_data`` (``ImageData``), ``digits`` (the bundled offline set),
``loading`` (``load_dataset`` and friends), ``mmap`` (splits too large for memory), ``provenance``
(where data came from, and a fingerprint to recognise it again), ``summary`` (tables and
statistics), ``errors``. The one batching path (uint8 -> float, shuffling) is :mod:`cae_lib.batches`.
"""

from cae_lib.data.layout import stratified_split, to_medmnist_layout
from cae_lib.data.npz import save_npz
from cae_lib.data.checksums import md5sum
from cae_lib.data.download import download_file, ensure_file
from cae_lib.data.paths import resolve_data_dir
from cae_lib.data.errors import (
    ChecksumError,
    CorruptFileError,
    DatasetFallbackWarning,
    DatasetUnavailableError,
    DownloadError,
)
from cae_lib.data.loading import ImageData, load_dataset, load_digits_split, load_labels, load_raw
from cae_lib.data.registry import SPLITS, DatasetInfo, dataset_names, get_info
from cae_lib.data.summary import class_balance, format_dataset_table, list_datasets, summarize

__all__ = [
    "SPLITS",
    "ChecksumError",
    "CorruptFileError",
    "DatasetFallbackWarning",
    "DatasetInfo",
    "DatasetUnavailableError",
    "DownloadError",
    "ImageData",
    "class_balance",
    "dataset_names",
    "download_file",
    "ensure_file",
    "format_dataset_table",
    "get_info",
    "list_datasets",
    "load_dataset",
    "load_digits_split",
    "load_labels",
    "load_raw",
    "md5sum",
    "resolve_data_dir",
    "save_npz",
    "stratified_split",
    "summarize",
    "to_medmnist_layout",
]
