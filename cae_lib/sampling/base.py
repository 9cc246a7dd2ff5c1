"""The sampler interface: ``fit(z, labels)`` -> ``sample_latents(n, ...)`` / ``sample(model, n, ...)``.

:class:`LatentSampler` does everything the samplers share: it validates the inputs, records the
class centroids, labels codes by their nearest centroid, draws seeded codes and decodes them.
A subclass only says how to fit (``_fit``) and how to draw (``_draw``); see
:mod:`cae_lib.sampling.samplers`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch.nn as nn

from cae_lib.embed import embed
from cae_lib.sampling.samples import (
    NO_LABEL,
    LatentSamples,
    Samples,
    _check_labels,
    _check_latents,
    _check_n,
    _check_scale,
    check_decoder,
    decode_latents,
    images_to_uint8,
)

_FROM_DATA = "data"


class LatentSampler:
    """Base class: fit on latents (and optional labels), draw codes, decode them.

    Subclasses implement ``_fit(z, labels)`` and ``_draw(n, label, rng, scale) -> (z, labels | None)``.
    Samples without a class of their own are labelled by :meth:`assign` (nearest class centroid),
    when the sampler was fitted with labels.

    Attributes (after ``fit``):
        latent_dim: L.
        classes_: sorted class ids seen in ``fit`` (empty without labels).
        class_counts_: how many latents each class had.
        centroids_: (K, L) class means; ``pooled_var_``: the mean within-class variance per dim.
    """

    conditional = False  #: whether ``label=`` may be passed to :meth:`sample_latents`

    def __init__(self) -> None:
        self.latent_dim: int | None = None
        self.classes_ = np.zeros(0, dtype=np.int64)
        self.class_counts_ = np.zeros(0, dtype=np.int64)
        self.centroids_: np.ndarray | None = None
        self.pooled_var_: float = 1.0

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def is_fitted(self) -> bool:
        return self.latent_dim is not None

    @property
    def has_labels(self) -> bool:
        return len(self.classes_) > 0

    # -- fitting ---------------------------------------------------------------------------
    def fit(self, z: np.ndarray, labels: np.ndarray | None = None) -> "LatentSampler":
        """Fit on latents ``z (N, L)`` and optional integer ``labels (N,)`` (classes or cluster ids)."""
        z = _check_latents(z, f"{self.name}.fit")
        labels = _check_labels(labels, len(z), f"{self.name}.fit")
        self.latent_dim = z.shape[1]
        if labels is None:
            self.classes_ = np.zeros(0, dtype=np.int64)
            self.class_counts_ = np.zeros(0, dtype=np.int64)
            self.centroids_ = None
        else:
            self.classes_, self.class_counts_ = np.unique(labels, return_counts=True)
            self.centroids_ = np.stack([z[labels == c].mean(axis=0) for c in self.classes_])
            resid = z - self.centroids_[np.searchsorted(self.classes_, labels)]
            dof = len(z) - len(self.classes_)
            var = float((resid**2).sum() / (dof * z.shape[1])) if dof > 0 else 0.0
            self.pooled_var_ = var if var > 1e-12 else float(z.var(axis=0).mean()) or 1.0
        self._fit(z, labels)
        return self

    def _fit(self, z: np.ndarray, labels: np.ndarray | None) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def fit_from_model(
        self, model: nn.Module, data: Any, labels: np.ndarray | None | str = _FROM_DATA, batch_size: int = 512
    ) -> "LatentSampler":
        """Embed ``data`` with ``model`` (eval mode, :func:`cae_lib.embed.embed`) and fit on the codes.

        Args:
            data: anything with ``.images``/``.labels`` (an ``ImageData``), or a uint8 image array.
            labels: ``"data"`` (default) uses ``data.labels``; ``None`` fits without labels; or
                give an array, e.g. k-means cluster ids for an unsupervised per-cluster sampler.
        """
        check_decoder(model)
        z = embed(model, data, batch_size=batch_size, space="latent")
        if isinstance(labels, str):
            if labels != _FROM_DATA:
                raise ValueError(f"labels must be 'data', None or an array; got {labels!r}")
            labels = getattr(data, "labels", None)
        return self.fit(z, labels)

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RuntimeError(
                f"{self.name} is not fitted yet: call .fit(z, labels) (or .fit_from_model(model, data)) first."
            )

    def _check_label(self, label: Any) -> int | None:
        if label is None:
            return None
        if not self.conditional:
            raise ValueError(
                f"{self.name} draws unconditionally and cannot pick a class (label={label!r}); "
                "use ClassGMMSampler for per-class samples."
            )
        if not self.has_labels:
            raise ValueError(f"{self.name} was fitted without labels, so label={label!r} cannot be chosen; "
                             "fit it with labels (true classes or cluster ids).")
        is_int = isinstance(label, (int, np.integer)) and not isinstance(label, bool)
        if not is_int or int(label) not in set(self.classes_.tolist()):
            raise ValueError(f"unknown label {label!r}; valid labels are {self.classes_.tolist()}")
        return int(label)

    # -- labelling -------------------------------------------------------------------------
    def assign(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label codes by their nearest class centroid.

        The confidence is ``softmax_c(-||z - mu_c||^2 / (2 s^2))`` with ``s^2`` the pooled
        within-class variance: the posterior of an isotropic-Gaussian classifier with equal class
        priors (so it does not depend on the latent scale). Without labels at fit time every code
        gets ``-1`` and confidence NaN.

        Returns:
            labels int64 (n,), confidence float64 (n,).
        """
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        if not self.has_labels:
            return np.full(len(z), NO_LABEL, dtype=np.int64), np.full(len(z), np.nan)
        d2 = ((z[:, None, :] - self.centroids_[None]) ** 2).sum(-1)  # (n, K)
        logits = -d2 / (2 * self.pooled_var_)
        post = np.exp(logits - logits.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        idx = post.argmax(axis=1)
        return self.classes_[idx], post[np.arange(len(z)), idx]

    # -- sampling --------------------------------------------------------------------------
    def _draw(
        self, n: int, label: int | None, rng: np.random.Generator, scale: float
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:  # pragma: no cover - overridden
        """-> (z (n, L), labels (n,) or None to label by :meth:`assign`, confidence (n,) or None)."""
        raise NotImplementedError

    def sample_latents(self, n: int, label: int | None = None, seed: int = 0, scale: float = 1.0) -> LatentSamples:
        """Draw ``n`` codes. Same ``seed`` -> same codes.

        Args:
            n: number of samples (> 0).
            label: a class to sample from (only :class:`ClassGMMSampler`); ``None``: any class.
            seed: seeds ``np.random.default_rng``.
            scale: temperature multiplying the standard deviation around the mean (>= 0).
        """
        self._check_fitted()
        n, scale = _check_n(n), _check_scale(scale)
        label = self._check_label(label)
        z, labels, conf = self._draw(n, label, np.random.default_rng(seed), scale)
        if labels is None:
            labels, conf = self.assign(z)
        return LatentSamples(z=z.astype(np.float32), labels=labels.astype(np.int64), confidence=conf.astype(np.float64))

    def sample(
        self, model: nn.Module, n: int, label: int | None = None, seed: int = 0, scale: float = 1.0, batch_size: int = 256
    ) -> Samples:
        """Draw ``n`` codes and decode them (eval mode, no gradients) -> :class:`Samples`."""
        self._check_fitted()
        check_decoder(model, self.latent_dim)
        drawn = self.sample_latents(n, label=label, seed=seed, scale=scale)
        x = decode_latents(model, drawn.z, batch_size)
        return Samples(images=images_to_uint8(x), x=x, z=drawn.z, labels=drawn.labels, confidence=drawn.confidence)

    def __repr__(self) -> str:
        state = f"latent_dim={self.latent_dim}, classes={self.classes_.tolist()}" if self.is_fitted else "not fitted"
        return f"{self.name}({state})"
