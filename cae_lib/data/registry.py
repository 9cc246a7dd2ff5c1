"""The dataset registry: what each named dataset is, where its file comes from, how to check it.

Twelve MedMNIST 2D datasets (from ``medmnist.info.INFO``, at 28, 64, 128 and 224 px) plus
``digits``, scikit-learn's bundled 8x8 digits resized to 28x28: the dataset that is always
available offline.

    >>> info = get_info("PneumoniaMNIST")
    >>> info.name, info.n_classes, info.filename_for(64)
    ('pneumoniamnist', 2, 'pneumoniamnist_64.npz')

The registry is built on first use from ``medmnist.info.INFO``, so importing ``cae_lib.data``
touches neither the network nor the disk.
"""

from __future__ import annotations

import ast
import difflib
import importlib.util
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

#: The splits every dataset has, in MedMNIST order.
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: The MedMNIST 2D datasets, in the order of the MedMNIST v2 paper.
MEDMNIST_2D: tuple[str, ...] = (
    "pathmnist",
    "chestmnist",
    "dermamnist",
    "octmnist",
    "pneumoniamnist",
    "retinamnist",
    "breastmnist",
    "bloodmnist",
    "tissuemnist",
    "organamnist",
    "organcmnist",
    "organsmnist",
)

MEDMNIST_SIZES: tuple[int, ...] = (28, 64, 128, 224)

#: How ``digits`` is split: stratified 70 / 10 / 20 with this seed (see ``custom.stratified_split``).
DIGITS_SEED = 0
DIGITS_FRACTIONS: tuple[float, float, float] = (0.7, 0.1, 0.2)


@dataclass(frozen=True)
class DatasetInfo:
    """Everything the toolkit knows about one dataset before opening its file.

    Attributes:
        name: registry key, lower case (``"pneumoniamnist"``).
        task: MedMNIST task string (``"binary-class"``, ``"multi-class"``, ``"multi-label, binary-class"``,
            ``"ordinal-regression"``).
        class_names: one name per class, index = label.
        n_channels: 1 (grey) or 3 (RGB).
        n_samples: official split sizes, ``{"train": ..., "val": ..., "test": ...}``.
        sizes: image sizes (px) the dataset exists at.
        urls: ``{size: download URL}`` (empty for bundled data).
        md5s: ``{size: MD5 hex digest}`` of the official files.
        display_name: the name as the authors write it (``"PneumoniaMNIST"``).
        license: the data licence.
        description: one paragraph from the dataset's authors.
    """

    name: str
    task: str
    class_names: tuple[str, ...]
    n_channels: int
    n_samples: Mapping[str, int] = field(hash=False)
    sizes: tuple[int, ...]
    urls: Mapping[int, str] = field(default_factory=dict, hash=False)
    md5s: Mapping[int, str] = field(default_factory=dict, hash=False)
    display_name: str = ""
    license: str = ""
    description: str = field(default="", repr=False, compare=False)

    def __post_init__(self) -> None:
        # Read-only views, so a shared DatasetInfo cannot be changed by accident
        # (use ``dataclasses.replace`` to make a modified copy, e.g. to point at a mirror).
        for name in ("n_samples", "urls", "md5s"):
            object.__setattr__(self, name, MappingProxyType(dict(getattr(self, name))))
        if not self.display_name:
            object.__setattr__(self, "display_name", self.name)

    # -- derived facts ---------------------------------------------------------------------
    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def is_multi_label(self) -> bool:
        """True for ChestMNIST: 14 yes/no findings per image instead of one class."""
        return self.task.startswith("multi-label")

    @property
    def is_bundled(self) -> bool:
        """True when the data ships with an installed package (``digits``) and is never downloaded."""
        return not self.urls

    def check_size(self, size: int) -> int:
        """Return ``size`` if the dataset exists at that size, else raise a ``ValueError`` listing the sizes."""
        if size not in self.sizes:
            extra = " (it is bundled with scikit-learn at 8x8 and upsampled to 28x28)" if self.is_bundled else ""
            raise ValueError(
                f"{self.display_name} is not available at size {size!r}{extra}. "
                f"Supported sizes: {', '.join(map(str, self.sizes))}."
            )
        return int(size)

    def filename_for(self, size: int) -> str:
        """The official file name: ``pathmnist.npz`` at 28 px, ``pathmnist_64.npz`` otherwise."""
        self.check_size(size)
        return f"{self.name}.npz" if size == 28 else f"{self.name}_{size}.npz"

    def url_for(self, size: int) -> str:
        """The official download URL of the file at ``size`` px."""
        self.check_size(size)
        if size not in self.urls:
            raise ValueError(f"{self.display_name} is bundled with its package; there is nothing to download.")
        return self.urls[size]

    def md5_for(self, size: int) -> str | None:
        """The expected MD5 of the file at ``size`` px (``None`` when unknown)."""
        self.check_size(size)
        return self.md5s.get(size)


# --------------------------------------------------------------------------------------------
# Building the registry
# --------------------------------------------------------------------------------------------
def _info_from_medmnist(name: str, entry: Mapping) -> DatasetInfo:
    labels = entry["label"]
    class_names = tuple(labels[str(i)] for i in range(len(labels)))
    urls, md5s = {}, {}
    for size in MEDMNIST_SIZES:
        suffix = "" if size == 28 else f"_{size}"
        if f"url{suffix}" in entry:
            urls[size] = entry[f"url{suffix}"]
            md5s[size] = entry[f"MD5{suffix}"]
    return DatasetInfo(
        name=name,
        task=entry["task"],
        class_names=class_names,
        n_channels=int(entry["n_channels"]),
        n_samples={k: int(v) for k, v in entry["n_samples"].items()},
        sizes=tuple(sorted(urls)),
        urls=urls,
        md5s=md5s,
        display_name=entry.get("python_class", name),
        license=entry.get("license", ""),
        description=entry.get("description", ""),
    )


#: ``digits``: 1,797 images, stratified 70/10/20 with seed 0 (a test re-derives these counts).
DIGITS_INFO = DatasetInfo(
    name="digits",
    task="multi-class",
    class_names=tuple(str(i) for i in range(10)),
    n_channels=1,
    n_samples={"train": 1259, "val": 179, "test": 359},
    sizes=(28,),
    display_name="digits",
    license="BSD-3-Clause (scikit-learn; UCI optical recognition of handwritten digits)",
    description=(
        "scikit-learn's bundled 8x8 handwritten digits (UCI), scaled from 0..16 to 0..255 and "
        "resized to 28x28 with bilinear interpolation. Always available offline."
    ),
)


def _medmnist_info() -> Mapping[str, Mapping]:
    """``medmnist.info.INFO``, read without importing the ``medmnist`` package if possible.

    Importing ``medmnist`` takes seconds (it imports its dataset classes) and creates ``~/.medmnist``.
    ``INFO`` is a plain dict literal in ``medmnist/info.py``, so we parse that file and evaluate
    only the literal; if that ever fails (a future layout), we import the package instead.
    """
    try:
        spec = importlib.util.find_spec("medmnist")
        if spec is not None and spec.submodule_search_locations:
            source = Path(list(spec.submodule_search_locations)[0], "info.py").read_text(encoding="utf-8")
            for node in ast.parse(source).body:
                if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "INFO" for t in node.targets):
                    return ast.literal_eval(node.value)
    except (OSError, ValueError, SyntaxError):
        pass
    from medmnist.info import INFO  # the slow, official way

    return INFO


@lru_cache(maxsize=1)
def _registry() -> Mapping[str, DatasetInfo]:
    """Name -> DatasetInfo for the 12 MedMNIST 2D sets and ``digits`` (built once, read-only)."""
    info = _medmnist_info()
    reg = {name: _info_from_medmnist(name, info[name]) for name in MEDMNIST_2D}
    reg["digits"] = DIGITS_INFO
    return MappingProxyType(reg)


def dataset_names() -> tuple[str, ...]:
    """All registry names: the 12 MedMNIST 2D sets, then ``digits``."""
    return MEDMNIST_2D + ("digits",)


def _canonical(name: str) -> str:
    """``"Pneumonia-MNIST "`` -> ``"pneumoniamnist"``: lower case, no spaces, dashes or underscores."""
    return re.sub(r"[\s_\-]+", "", name.strip().lower())


def is_registered(name: str) -> bool:
    """True if ``name`` (any case; with or without the ``mnist`` suffix) is a registry name."""
    key = _canonical(name)
    names = dataset_names()
    return key in names or f"{key}mnist" in names


def get_info(name: str) -> DatasetInfo:
    """Look up a dataset by name, case-insensitively.

    ``"PneumoniaMNIST"``, ``"pneumoniamnist"``, ``"pneumonia-mnist"`` and ``"pneumonia"`` all work.

    Raises:
        ValueError: unknown name; the message suggests the closest names and lists all valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    key = _canonical(name)
    names = dataset_names()
    if key not in names and f"{key}mnist" in names:
        key = f"{key}mnist"
    if key not in names:
        close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        raise ValueError(
            f"Unknown dataset {name!r}.{hint} Valid names: {', '.join(names)}. "
            "To use your own data, pass a folder with one sub-folder per class, or an .npz file in "
            "MedMNIST layout (see cae_lib.data.save_npz)."
        )
    if key == "digits":  # bundled: no need to import medmnist
        return DIGITS_INFO
    return _registry()[key]
