"""The one way a batch is built: uint8 rows in, float (B, C, H, W) in [0, 1] out.

Everything that feeds images to a model goes through this module: the trainer, the embedding,
the baselines, the samplers and the widgets. Three pieces:

- :func:`images_to_float` is the only uint8 -> float conversion in cae-lib. It takes the
  MedMNIST layout, (N, H, W) or (N, H, W, C), and returns (N, C, H, W) float32 in [0, 1].
- :func:`epoch_batches` is the only shuffling policy: epoch ``e`` of seed ``s`` is the
  permutation drawn from :func:`epoch_generator` ``(s, e, 0)``, cut into batches. Exact resume
  depends on it (a run resumed at epoch ``e`` draws the same permutation), and so do the shards
  of a multi-process run (each rank takes its contiguous slice of every batch of the same order,
  :func:`cae_lib.distributed.shard`).
- :class:`ImageBatches` is a batch source: ``len()`` and ``get_batch(indices)``. It keeps the
  images as they are on disk (uint8; a memory map stays a memory map) and converts only the
  rows of each batch.

For your own loop, the trainer's batches of one epoch are::

    source = ImageBatches.from_data(data)
    for idx in epoch_batches(len(source), 256, seed=0, epoch=0):
        x, y = source.get_batch(idx)          # x: (B, C, H, W) float in [0, 1], y: (B,) long
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

Batch = tuple[torch.Tensor, ...]


def images_to_float(images: Any) -> torch.Tensor:
    """MedMNIST-layout images -> float32 tensor (N, C, H, W) in [0, 1].

    Args:
        images: (N, H, W) or (N, H, W, C), as a NumPy array (a memory map is fine) or a tensor.
            uint8 is divided by 255; floats are taken as already in [0, 1].

    Returns:
        x: float32 (N, C, H, W), a new tensor (the input is never modified).

    Raises:
        ValueError: for any other number of dimensions.
    """
    x = images if isinstance(images, torch.Tensor) else torch.from_numpy(np.ascontiguousarray(images))
    if x.dim() == 3:
        x = x.unsqueeze(1)
    elif x.dim() == 4:
        x = x.permute(0, 3, 1, 2)
    else:
        raise ValueError(
            f"images must be (N, H, W) or (N, H, W, C) (the MedMNIST layout), got shape {tuple(x.shape)}"
        )
    if x.dtype == torch.uint8:
        return x.float().div_(255.0).contiguous()
    return x.float().contiguous() if x.dtype != torch.float32 else x.clone().contiguous()


def images_of(data: Any) -> np.ndarray:
    """The image array of ``data``: an :class:`~cae_lib.data.ImageData` (``.images``) or the array itself."""
    return data.images if hasattr(data, "images") else data


def labels_of(data: Any) -> np.ndarray:
    """The labels of ``data`` as a flat int64 array (an (N, 1) MedMNIST column is flattened)."""
    return np.asarray(data.labels).reshape(-1).astype(np.int64)


def epoch_generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A generator unique to (seed, epoch, stream): stream 0 shuffles, 1 augments, 2 validates, 3 seeds dropout."""
    return torch.Generator().manual_seed(int(seed) * 1_000_003 + epoch * 7919 + stream)


def epoch_batches(
    n: int,
    batch_size: int,
    seed: int | None = 0,
    epoch: int = 0,
    min_batch: int = 1,
) -> list[torch.Tensor]:
    """The row indices of every batch of one epoch.

    Args:
        n: number of rows.
        batch_size: rows per batch.
        seed: shuffle with the permutation of :func:`epoch_generator` ``(seed, epoch, 0)``;
            ``None`` keeps the file order.
        epoch: which epoch's permutation.
        min_batch: a last batch with fewer rows than this is dropped (the trainer drops a tiny
            last batch, which would give NT-Xent too few negatives). ``batch_size`` drops any
            incomplete last batch; 1 keeps every row. A lone batch is never dropped.

    Returns:
        A list of int64 tensors, each (<= batch_size,).
    """
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = torch.randperm(n, generator=epoch_generator(seed, epoch, 0)) if seed is not None else torch.arange(n)
    chunks = list(order.split(int(batch_size)))
    if len(chunks) > 1 and len(chunks[-1]) < min_batch:
        chunks.pop()
    return chunks


class ImageBatches:
    """A batch source over images kept as they are (uint8, MedMNIST layout; memory maps stay mapped).

    Args:
        images: (N, H, W) or (N, H, W, C) array, or anything with ``.images`` and ``.labels``
            (e.g. :func:`cae_lib.data.load_dataset`'s result).
        labels: (N,) integer labels; zeros when omitted (unsupervised objectives ignore them).

    ``get_batch(idx)`` returns ``(x (B, C, H, W) float in [0, 1], y (B,) long)``.
    """

    def __init__(self, images: Any, labels: Any = None) -> None:
        if labels is None and hasattr(images, "labels"):
            labels = images.labels
        images = images_of(images)
        if np.ndim(images) not in (3, 4):
            raise ValueError(f"images must be (N, H, W) or (N, H, W, C), got shape {tuple(np.shape(images))}")
        self.images = images
        n = len(images)
        self.labels = (
            torch.from_numpy(np.asarray(labels).reshape(-1).astype(np.int64)) if labels is not None
            else torch.zeros(n, dtype=torch.long)
        )
        if len(self.labels) != n:
            raise ValueError(f"{n} images but {len(self.labels)} labels")

    @classmethod
    def from_data(cls, data: Any) -> "ImageBatches":
        """Wrap anything with ``.images`` and ``.labels``."""
        return cls(data.images, data.labels)

    def __len__(self) -> int:
        return len(self.images)

    def get_batch(self, indices: torch.Tensor) -> Batch:
        rows = indices.numpy() if isinstance(indices, torch.Tensor) else np.asarray(indices)
        return images_to_float(self.images[rows]), self.labels[rows]
