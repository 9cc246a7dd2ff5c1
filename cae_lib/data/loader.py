"""Mini-batches from an :class:`ImageData`, fast on a CPU.

A batch is built by indexing the uint8 image array with a whole index tensor at once and
converting just those rows to float: no per-image Python calls, and memory stays at one byte per
pixel. Shuffling is reproducible: epoch ``e`` uses ``torch.Generator().manual_seed(seed + e)``.

    >>> loader = make_loader(data, batch_size=256)            # doctest: +SKIP
    >>> for x, y in loader:                                    # x: (B, C, H, W) float in [0, 1], y: (B,) long
    ...     ...
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np
import torch

from cae_lib.data.loading import ImageData

Batch = tuple[torch.Tensor, torch.Tensor]


class _Batches(torch.utils.data.Dataset):
    """``batches[idx]`` -> (x float (B, C, H, W) in [0, 1], y long (B,)) for a tensor of row indices."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor) -> None:
        self.images = images  # uint8, (N, H, W) or (N, H, W, C), shares memory with ImageData.images
        self.labels = labels  # int64, (N,)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, idx: torch.Tensor) -> Batch:
        x = self.images[idx]
        x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2).contiguous()  # NHWC -> NCHW, still uint8
        return x.float().div_(255.0), self.labels[idx]


class BatchLoader:
    """An iterable of ``(x, y)`` batches over an :class:`ImageData`; a new shuffle every epoch.

    Args:
        data: the images and labels.
        batch_size: rows per batch.
        shuffle: shuffle the rows each epoch (else keep file order).
        seed: epoch ``e`` shuffles with a generator seeded ``seed + e``; same seed, same batches.
        drop_last: drop the last batch if it is smaller than ``batch_size``.
        num_workers: ``0`` (default; best on Binder and Windows) builds batches in this process;
            more uses a ``torch.utils.data.DataLoader`` with that many worker processes.

    Yields:
        x: float32 (B, C, H, W) in [0, 1]; y: int64 (B,).
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int = 256,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_workers: int = 0,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if int(num_workers) < 0:
            raise ValueError(f"num_workers must be >= 0, got {num_workers}")
        self.batches = _Batches(
            torch.from_numpy(np.ascontiguousarray(data.images)),
            torch.from_numpy(np.ascontiguousarray(data.labels, dtype=np.int64)),
        )
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_workers = int(num_workers)
        self.epoch = 0  # the epoch the next ``iter()`` will produce

    def __len__(self) -> int:
        n = len(self.batches)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def set_epoch(self, epoch: int) -> None:
        """Make the next ``iter()`` produce epoch ``epoch``'s shuffle (e.g. when resuming)."""
        self.epoch = int(epoch)

    def batch_indices(self, epoch: int) -> list[torch.Tensor]:
        """The row indices of every batch of ``epoch``, as int64 tensors."""
        n = len(self.batches)
        if self.shuffle:
            order = torch.randperm(n, generator=torch.Generator().manual_seed(self.seed + epoch))
        else:
            order = torch.arange(n)
        chunks = list(order.split(self.batch_size))
        if self.drop_last and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        return chunks

    def __iter__(self) -> Iterator[Batch]:
        chunks = self.batch_indices(self.epoch)
        self.epoch += 1
        if self.num_workers == 0:
            return (self.batches[idx] for idx in chunks)
        loader = torch.utils.data.DataLoader(
            self.batches, batch_size=None, sampler=chunks, num_workers=self.num_workers
        )
        return iter(loader)


def make_loader(
    data: ImageData,
    batch_size: int = 256,
    shuffle: bool = True,
    seed: int = 0,
    drop_last: bool = False,
    num_workers: int = 0,
) -> BatchLoader:
    """Batches ``(x (B, C, H, W) float in [0, 1], y (B,) long)`` over ``data``; see :class:`BatchLoader`."""
    return BatchLoader(data, batch_size, shuffle, seed, drop_last, num_workers)
