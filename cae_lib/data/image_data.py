"""``ImageData``: one split of an image dataset, its images kept as uint8 until a batch is built.

    >>> data = load_dataset("pneumoniamnist", split="test")      # doctest: +SKIP
    >>> data.images.shape, data.images.dtype, data.n_classes      # doctest: +SKIP
    ((624, 28, 28), dtype('uint8'), 2)
    >>> x = data.to_tensor([0, 1, 2])                             # doctest: +SKIP
    >>> x.shape, x.dtype                                          # doctest: +SKIP
    (torch.Size([3, 1, 28, 28]), torch.float32)

Images stay uint8 in memory (PathMNIST as float32 would be ~1 GB, more than Binder allows);
only the rows asked for are converted to float in [0, 1], by
:func:`cae_lib.batches.images_to_float`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence, Union

import numpy as np
import torch

from cae_lib.batches import images_to_float

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
        return images_to_float(self.images[self._rows(indices)])

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
