"""Quality checks on generated images: are they new, labelled right, and varied?

* :func:`nearest_training_distance` and :func:`memorisation_check` (-> :class:`MemorisationReport`):
  is the model just copying training images?
* :func:`label_agreement`: does an external classifier agree with the sampled label?
* :func:`diversity`: are the samples all alike?

What each number means is in each docstring. Distances are RMS differences per pixel on the
[0, 1] scale; a uint8 training set is converted chunk by chunk, never copied whole.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from cae_lib.batches import images_to_float
from cae_lib.sampling.samples import NO_LABEL, Samples


def _flat_raw(images: Any, what: str) -> np.ndarray:
    """Images or vectors -> (n, D), still uint8 if they were (a view when possible: no float copy
    of a large training set). Torch tensors (n, C, H, W) are put in MedMNIST order first."""
    if isinstance(images, Samples):
        images = images.images
    if isinstance(images, torch.Tensor):
        images = images.detach().cpu()
        if images.dim() == 4:  # (n, C, H, W) -> (n, H, W, C) so it matches NumPy inputs
            images = images.permute(0, 2, 3, 1)
        images = images.numpy()
    arr = np.asarray(images)
    if arr.ndim < 2 or len(arr) == 0:
        raise ValueError(f"{what}: expected a non-empty batch (n, ...); got shape {arr.shape}")
    if arr.dtype != np.uint8 and not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float32)
    return arr.reshape(len(arr), -1)


def _to_float(chunk: np.ndarray, what: str = "images") -> torch.Tensor:
    """(n, D) uint8 or floats -> float32 tensor (n, D); uint8 is scaled to [0, 1].

    The conversion is :func:`cae_lib.batches.images_to_float`, on the rows seen as
    (n, 1, D) one-row images.
    """
    t = images_to_float(chunk[:, None, :]).reshape(len(chunk), -1)
    if chunk.dtype != np.uint8 and not torch.isfinite(t).all():
        raise ValueError(f"{what}: contains NaN or Inf")
    return t


def _nearest(a: np.ndarray, b: np.ndarray, batch_size: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """For each row of a, the RMS distance to its nearest row of b. a (n, D), b (m, D) -> (n,).

    b is converted to float chunk by chunk (a uint8 training set is never copied whole). Candidates
    come from a fast matrix product; the winner's distance is then recomputed exactly, so an
    identical copy gives exactly 0. ``exclude[i]``: an index of b that row i may not match (itself).
    """
    at = _to_float(a, "generated")
    a_sq = (at * at).sum(1)
    best_d2 = torch.full((len(at),), float("inf"))
    best_idx = torch.zeros(len(at), dtype=torch.long)
    for start in range(0, len(b), batch_size):
        bt = _to_float(b[start : start + batch_size], "train")
        for r0 in range(0, len(at), batch_size):
            rows = slice(r0, r0 + batch_size)
            d2 = a_sq[rows, None] + (bt * bt).sum(1)[None] - 2 * at[rows] @ bt.T
            if exclude is not None:
                ex = torch.as_tensor(exclude[rows]) - start
                hit = (ex >= 0) & (ex < len(bt))
                d2[torch.nonzero(hit).flatten(), ex[hit]] = float("inf")
            val, idx = d2.min(1)
            better = val < best_d2[rows]
            best_d2[rows] = torch.where(better, val, best_d2[rows])
            best_idx[rows] = torch.where(better, idx + start, best_idx[rows])
    nearest = _to_float(b[best_idx.numpy()], "train")
    return ((at - nearest) ** 2).mean(1).sqrt().double().numpy()


def nearest_training_distance(generated: Any, train: Any, batch_size: int = 256) -> np.ndarray:
    """Pixel-space distance from each generated image to its nearest training image, (n,).

    The distance is the RMS difference per pixel on the [0, 1] scale, ``sqrt(mean((a - b)^2))``:
    0 means an exact copy, 0.1 means pixels differ by about 10% of the full range on average.
    On its own a value means little; compare it with how far real images are from each other
    (:func:`memorisation_check` does that).

    Args:
        generated: uint8 images in MedMNIST layout, floats in [0, 1], a tensor (n, C, H, W), or a
            :class:`Samples`.
        train: training images in the same form (e.g. ``data.images``).
    """
    a, b = _flat_pair(generated, train)
    return _nearest(a, b, int(batch_size))


def _flat_pair(generated: Any, train: Any) -> tuple[np.ndarray, np.ndarray]:
    a, b = _flat_raw(generated, "generated"), _flat_raw(train, "train")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"generated images have {a.shape[1]} values each but training images have {b.shape[1]}: "
                         "compare images of the same size and number of channels")
    return a, b


@dataclass
class MemorisationReport:
    """Result of :func:`memorisation_check`.

    Attributes:
        distances: (n,) nearest-training-image distance of each generated image.
        train_nn_distances: (m,) nearest-*other*-training-image distance of m real training images:
            how close real images naturally come to one another.
        threshold: the ``quantile`` of ``train_nn_distances``.
        flagged: (n,) bool, generated images at or below the threshold (suspiciously close to a
            training image: only a fraction ``quantile`` of real images are that close to a neighbour).
    """

    distances: np.ndarray
    train_nn_distances: np.ndarray
    threshold: float
    quantile: float
    flagged: np.ndarray

    @property
    def flagged_fraction(self) -> float:
        """About ``quantile`` for images as novel as real ones; near 1 when the model copies."""
        return float(self.flagged.mean())

    @property
    def distance_ratio(self) -> float:
        """median(generated NN distance) / median(train-to-train NN distance).

        About 1: generated images are as far from the training set as real images are from each
        other. Much below 1: near-copies (memorisation). Above 1: the samples look unlike any
        training image (off the data manifold, or blurrier/noisier than real images).
        """
        ref = float(np.median(self.train_nn_distances))
        return float(np.median(self.distances)) / ref if ref > 0 else math.inf

    def summary(self) -> str:
        verdict = (
            "possible memorisation"
            if self.flagged_fraction > max(2 * self.quantile, self.quantile + 0.1)
            else "no sign of memorisation"
        )
        return (
            f"{self.flagged_fraction:.1%} of {len(self.distances)} samples are closer to a training image than "
            f"{self.quantile:.0%} of real images are to their nearest neighbour (threshold {self.threshold:.4f}; "
            f"expected about {self.quantile:.0%} for novel images): {verdict}. Median distance ratio "
            f"generated / real = {self.distance_ratio:.2f} (about 1 = as novel as real images)."
        )


def memorisation_check(
    generated: Any, train: Any, quantile: float = 0.05, reference_size: int = 500, seed: int = 0, batch_size: int = 256
) -> MemorisationReport:
    """Are the samples new images, or copies of training images?

    Each generated image's nearest-training distance is compared with the nearest-neighbour
    distances *among real training images*, measured on a seeded subsample of ``reference_size``
    training images (each against the whole training set, itself excluded). A generated image is
    flagged when it is closer to a training image than all but a fraction ``quantile`` of real
    images are to theirs. Copies have distance 0 and are always flagged.
    """
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile}")
    a, b = _flat_pair(generated, train)
    if len(b) < 2:
        raise ValueError("train needs at least 2 images to measure train-to-train distances")
    distances = _nearest(a, b, int(batch_size))
    rng = np.random.default_rng(seed)
    ref_idx = np.sort(rng.choice(len(b), size=min(int(reference_size), len(b)), replace=False))
    train_nn = _nearest(b[ref_idx], b, int(batch_size), exclude=ref_idx)  # each against all others
    threshold = float(np.quantile(train_nn, quantile))
    return MemorisationReport(distances, train_nn, threshold, float(quantile), distances <= threshold)


def label_agreement(sample_labels: Any, predicted_labels: Any) -> float:
    """Fraction of samples whose sampled label an external classifier agrees with.

    Train a supervised classifier on real images (e.g. a baseline or a linear probe), predict the
    class of each generated image, and pass both label arrays here. High agreement means the class
    information survives decoding: the samples are usable as labelled augmentation data. Compare it
    with chance, ``sum_c p_c q_c`` (p, q: the label frequencies of the two arrays), and with the
    classifier's own test accuracy (its ceiling). Samples labelled -1 (no label) are ignored.
    """
    s = np.asarray(sample_labels).reshape(-1)
    if isinstance(predicted_labels, torch.Tensor):
        predicted_labels = predicted_labels.detach().cpu().numpy()
    p = np.asarray(predicted_labels).reshape(-1)
    if len(s) != len(p):
        raise ValueError(f"sample_labels has {len(s)} entries but predicted_labels has {len(p)}")
    keep = s != NO_LABEL
    if not keep.any():
        raise ValueError("no labelled samples (all -1): fit the sampler with labels to get labelled samples")
    return float((s[keep] == p[keep]).mean())


def diversity(images: Any, max_images: int = 200, seed: int = 0) -> float:
    """Mean pairwise RMS distance between samples (on a seeded subsample of ``max_images``).

    0 means all samples are identical (mode collapse, or ``scale=0``). Compare it with the same
    number on real training images: much lower means the sampler covers only part of the data's
    variety. Works on images (uint8 or floats in [0, 1], as in :func:`nearest_training_distance`)
    and on latent codes (n, L), where it is the Euclidean distance divided by sqrt(L).
    """
    x = _flat_raw(images, "images")
    if len(x) < 2:
        raise ValueError("diversity needs at least 2 samples")
    if int(max_images) < 2:
        raise ValueError(f"max_images must be >= 2, got {max_images}")
    if len(x) > max_images:
        x = x[np.sort(np.random.default_rng(seed).choice(len(x), size=int(max_images), replace=False))]
    xt = _to_float(x).double()
    d = torch.cdist(xt, xt, compute_mode="donot_use_mm_for_euclid_dist") / math.sqrt(x.shape[1])  # RMS per value
    iu = torch.triu_indices(len(x), len(x), offset=1)
    return float(d[iu[0], iu[1]].mean())
