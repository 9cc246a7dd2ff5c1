"""Latent samplers: draw codes z, decode them into new (labelled) images, and check the results.

Ferrante et al. (2023) propose the contrastive autoencoder "for data augmentation in medical image
processing, due to its sampling abilities in a variational setting". This module makes that
claim testable. As in pythae, samplers are kept apart from the models: a sampler only sees latent
codes ``z (N, L)`` (and optionally labels), and a trained model is needed only to *decode*.

Samplers (same interface: ``fit(z, labels)`` -> ``sample_latents(n, ...)`` / ``sample(model, n, ...)``):

* :class:`PriorSampler`: z ~ N(0, I), the prior of the VAE variant. A plain AE is not trained to
  match it, so its samples usually fall off the data (you get a warning).
* :class:`GaussianSampler`: one Gaussian fitted to the training latents (the authors' approach).
* :class:`ClassGMMSampler`: one Gaussian (or a small GMM) per class. ``label=`` picks the class,
  and every sample carries its class and a confidence. Pass k-means cluster ids instead of true
  labels for a fully unsupervised, per-cluster sampler.

Two explorers that share the encode -> move in latent space -> decode idea:
:class:`Interpolator` (a straight line, or slerp, between two images) and :class:`LatentTraversal`
(walk along one raw latent dimension or one principal component).

Quality checks (what the numbers mean is in each docstring): :func:`nearest_training_distance` and
:func:`memorisation_check` (is the model just copying training images?), :func:`label_agreement`
(does an external classifier agree with the sampled label?), :func:`diversity` (are the samples
all alike?). :func:`save_samples_npz` writes the samples in MedMNIST layout, so
``cae_lib.data.load_dataset(path)`` reads them back like any dataset (e.g. for augmentation).

Example:
    >>> sampler = ClassGMMSampler().fit_from_model(model, train_data)     # doctest: +SKIP
    >>> s = sampler.sample(model, 64, label=1, seed=0)                     # doctest: +SKIP
    >>> s.images.shape, s.labels[:3], s.confidence[:3]                     # doctest: +SKIP
    ((64, 28, 28), array([1, 1, 1]), array([0.97, 0.88, 0.99]))

Randomness comes only from ``np.random.default_rng(seed)``: the same seed gives the same samples.
``scale`` is a temperature: it multiplies the standard deviation around the mean (``scale=0``
returns the mean itself, ``scale < 1`` gives more typical but less diverse samples).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

NO_LABEL = -1  #: label of a sample that could not be assigned a class (sampler fitted without labels)
_FROM_DATA = "data"


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------
@dataclass
class LatentSamples:
    """Codes drawn by :meth:`LatentSampler.sample_latents`.

    Attributes:
        z: float32 (n, L).
        labels: int64 (n,); ``NO_LABEL`` (-1) when the sampler was fitted without labels.
        confidence: float64 (n,) in [0, 1], how sure the sampler is of that label; NaN without labels.
    """

    z: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.z)


@dataclass
class Samples:
    """Decoded samples.

    Attributes:
        images: uint8 in MedMNIST layout, (n, H, W) for 1 channel or (n, H, W, C) for RGB.
        x: float32 tensor (n, C, H, W) in [0, 1] on the CPU (the decoder output).
        z: float32 (n, L), the codes that were decoded.
        labels: int64 (n,); -1 when unknown.
        confidence: float64 (n,); NaN when unknown.
    """

    images: np.ndarray
    x: torch.Tensor
    z: np.ndarray
    labels: np.ndarray
    confidence: np.ndarray

    def __len__(self) -> int:
        return len(self.images)


# --------------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------------
def _check_latents(z: Any, where: str) -> np.ndarray:
    """(N, L) finite floats -> float64 array, or a clear error."""
    if isinstance(z, torch.Tensor):
        z = z.detach().cpu().numpy()
    z = np.asarray(z, dtype=np.float64)
    if z.ndim != 2:
        raise ValueError(f"{where}: latents must be a 2-D array (N, L); got shape {z.shape}. "
                         "For a single code use z[None, :].")
    if len(z) < 2:
        raise ValueError(f"{where}: need at least 2 latent codes to fit, got {len(z)}")
    bad = ~np.isfinite(z).all(axis=1)
    if bad.any():
        raise ValueError(
            f"{where}: latents contain NaN or Inf in {int(bad.sum())} of {len(z)} rows (first: row "
            f"{int(np.flatnonzero(bad)[0])}). The model probably diverged during training; retrain it "
            "(lower TrainConfig.lr) or drop those rows before fitting."
        )
    return z


def _check_labels(labels: Any, n: int, where: str) -> np.ndarray | None:
    if labels is None:
        return None
    if isinstance(labels, torch.Tensor):
        labels = labels.detach().cpu().numpy()
    labels = np.asarray(labels)
    if labels.ndim == 2 and labels.shape[1] == 1:  # MedMNIST stores labels as (N, 1)
        labels = labels[:, 0]
    if labels.ndim != 1 or len(labels) != n:
        raise ValueError(f"{where}: labels must be (N,) with N = {n} (one per latent); got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if not (np.isfinite(labels).all() and np.all(np.mod(labels, 1) == 0)):
            raise ValueError(f"{where}: labels must be integers (class or cluster ids); got {labels.dtype}")
    labels = labels.astype(np.int64)
    if labels.min() < 0:
        raise ValueError(f"{where}: labels must be >= 0 (class or cluster ids); got minimum {labels.min()}")
    return labels


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"n must be an integer number of samples, got {n!r}")
    if n <= 0:
        raise ValueError(f"n must be a positive number of samples, got {n}")
    return int(n)


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not math.isfinite(scale) or scale < 0:
        raise ValueError(f"scale (the temperature multiplying the standard deviation) must be >= 0, got {scale}")
    return scale


def check_decoder(model: Any, latent_dim: int | None = None) -> None:
    """Raise a clear error unless ``model`` can decode codes of size ``latent_dim``.

    Raises:
        TypeError: ``model`` has no ``decode`` method (a supervised baseline, an encoder only, or a
            checkpoint dictionary instead of the model).
        ValueError: the model's ``cfg.latent_dim`` differs from ``latent_dim``.
    """
    if not callable(getattr(model, "decode", None)):
        raise TypeError(
            f"{type(model).__name__} has no decoder (no .decode(z) method): sampling needs an autoencoder. "
            "Pass a ContrastiveAutoencoder (e.g. the model returned by cae_lib.checkpoint.load_checkpoint), "
            "not a checkpoint dictionary, a supervised baseline or an encoder-only model."
        )
    model_dim = getattr(getattr(model, "cfg", None), "latent_dim", None)
    if latent_dim is not None and model_dim is not None and int(model_dim) != int(latent_dim):
        raise ValueError(
            f"latent dimension mismatch: the sampler was fitted on {latent_dim}-dimensional latents but the "
            f"model's latent_dim is {model_dim}. Fit the sampler on this model's latents "
            "(sampler.fit_from_model(model, data))."
        )


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


def images_to_uint8(x: torch.Tensor) -> np.ndarray:
    """x (n, C, H, W) floats in [0, 1] -> uint8 MedMNIST layout (n, H, W) or (n, H, W, C)."""
    arr = x.detach().cpu().float().clamp(0, 1).mul(255).round().to(torch.uint8)
    arr = arr.permute(0, 2, 3, 1).numpy()
    return np.ascontiguousarray(arr[..., 0] if arr.shape[-1] == 1 else arr)


@torch.no_grad()
def decode_latents(model: nn.Module, z: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Decode z (n, L) -> x (n, C, H, W) in [0, 1] on the CPU, in eval mode and without gradients.

    The model's train/eval mode is restored afterwards (BatchNorm in train mode would normalise the
    decoded batch with its own statistics: samples would depend on their batch neighbours).
    """
    check_decoder(model, int(np.shape(z)[1]))
    device = _model_device(model)
    zt = torch.as_tensor(np.asarray(z, dtype=np.float32)) if not isinstance(z, torch.Tensor) else z.float()
    was_training = model.training
    model.eval()
    try:
        out = [model.decode(chunk.to(device)).float().cpu() for chunk in zt.split(batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(out).clamp_(0, 1)


def _to_model_input(x: Any, model: nn.Module, what: str) -> torch.Tensor:
    """One image -> (1, C, H, W) float in [0, 1].

    Torch tensors are channels-first, (C, H, W) or (1, C, H, W); NumPy arrays are in MedMNIST
    layout, (H, W) or (H, W, C) (e.g. ``data.images[i]``). uint8 is scaled by 1/255.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach().cpu()
        if t.dim() == 3:
            t = t.unsqueeze(0)
    else:
        arr = np.asarray(x)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise ValueError(f"{what}: a NumPy image must be (H, W) or (H, W, C) (MedMNIST layout); got {arr.shape}")
        t = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).unsqueeze(0)
    if t.dim() != 4 or t.shape[0] != 1:
        raise ValueError(f"{what}: expected one image, (C, H, W) or (1, C, H, W); got shape {tuple(t.shape)}")
    t = t.float() / 255.0 if t.dtype == torch.uint8 else t.float()
    channels = getattr(getattr(model, "cfg", None), "in_channels", None)
    if channels is not None and t.shape[1] != channels:
        raise ValueError(f"{what}: the image has {t.shape[1]} channel(s) but the model expects {channels}")
    return t


@torch.no_grad()
def _encode_one(model: nn.Module, x: Any, what: str) -> np.ndarray:
    """Encode one image in eval mode -> its code (L,) (the VAE's mean)."""
    if not callable(getattr(model, "encode", None)):
        raise TypeError(f"{type(model).__name__} has no .encode(x) method; pass a ContrastiveAutoencoder")
    t = _to_model_input(x, model, what)
    was_training = model.training
    model.eval()
    try:
        mu, _ = model.encode(t.to(_model_device(model)))
    finally:
        model.train(was_training)
    return mu[0].float().cpu().numpy().astype(np.float64)


# --------------------------------------------------------------------------------------------
# Samplers
# --------------------------------------------------------------------------------------------
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
        from cae_lib.embed import embed

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


class PriorSampler(LatentSampler):
    """z ~ N(0, I): the prior that the VAE variant's KL term pulls the latents towards.

    ``fit`` learns nothing about the distribution; it records ``latent_dim`` (and, with labels, the
    class centroids used to label samples). You may instead pass ``latent_dim`` to the constructor.

    A plain AE (``variant="ae"``) is never asked to match N(0, I): its codes can sit anywhere, at any
    scale, so prior samples usually decode to implausible images. This is allowed (it is a good
    classroom demonstration) but :meth:`sample` warns, and :meth:`fit` warns when the latents are
    visibly not standard normal. Use :class:`GaussianSampler` for a plain AE.
    """

    def __init__(self, latent_dim: int | None = None) -> None:
        super().__init__()
        if latent_dim is not None:
            if int(latent_dim) < 1:
                raise ValueError(f"latent_dim must be positive, got {latent_dim}")
            self.latent_dim = int(latent_dim)

    def _fit(self, z: np.ndarray, labels: np.ndarray | None) -> None:
        # Only clear mismatches warn: a good VAE's means mu may have sd < 1 (the rest of the
        # aggregate variance is in sigma), and collapsed dimensions have mu ~ 0 with sd ~ 0.
        mean, sd = z.mean(axis=0), z.std(axis=0)
        if np.abs(mean).max() > 1.0 or sd.max() > 3.0:
            warnings.warn(
                f"these latents do not look like N(0, I) (|mean| up to {np.abs(mean).max():.2f}, sd up to "
                f"{sd.max():.2f}): prior samples will fall off the data. "
                "GaussianSampler fits the latents' actual mean and covariance.",
                UserWarning,
                stacklevel=3,
            )

    def _draw(self, n, label, rng, scale):
        return rng.standard_normal((n, self.latent_dim)) * scale, None, None

    def sample(self, model, n, label=None, seed=0, scale=1.0, batch_size=256) -> Samples:
        self._check_fitted()
        if getattr(model, "is_variational", True) is False:
            warnings.warn(
                "PriorSampler with a plain AE (variant='ae'): its latents were never trained to follow N(0, I), "
                "so these samples may not look like the data. Use GaussianSampler or ClassGMMSampler.",
                UserWarning,
                stacklevel=2,
            )
        return super().sample(model, n, label=label, seed=seed, scale=scale, batch_size=batch_size)


def _sqrt_cov(cov: np.ndarray) -> np.ndarray:
    """A matrix A with A A^T = cov (Cholesky; symmetric eigen-square-root if cov is singular)."""
    try:
        return np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        w, v = np.linalg.eigh(cov)
        return v * np.sqrt(np.clip(w, 0, None))


class GaussianSampler(LatentSampler):
    """One Gaussian N(mean, cov) fitted to all training latents (the authors' approach).

    Args:
        covariance: ``"full"`` (captures correlated dimensions) or ``"diag"``.
        reg_covar: added to the diagonal so the covariance stays invertible.

    Samples are labelled by the nearest class centroid (see :meth:`LatentSampler.assign`).
    """

    def __init__(self, covariance: str = "full", reg_covar: float = 1e-6) -> None:
        super().__init__()
        if covariance not in ("full", "diag"):
            raise ValueError(f"covariance must be 'full' or 'diag', got {covariance!r}")
        self.covariance = covariance
        self.reg_covar = float(reg_covar)

    def _fit(self, z: np.ndarray, labels: np.ndarray | None) -> None:
        self.mean_ = z.mean(axis=0)
        if self.covariance == "full":
            self.cov_ = np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1]) + self.reg_covar * np.eye(z.shape[1])
        else:
            self.cov_ = np.diag(z.var(axis=0, ddof=1) + self.reg_covar)
        self.sqrt_cov_ = _sqrt_cov(self.cov_)

    def _draw(self, n, label, rng, scale):
        eps = rng.standard_normal((n, self.latent_dim))
        return self.mean_ + scale * eps @ self.sqrt_cov_.T, None, None


class ClassGMMSampler(LatentSampler):
    """A Gaussian mixture per class: p(z) = sum_c pi_c p(z | c), each p(z | c) a small GMM.

    ``label=c`` samples class c; ``label=None`` picks classes in proportion to their training
    frequency pi_c. Each sample's label is the class of the component it was drawn from; its
    confidence is the posterior probability of that class under the fitted mixture,
    ``P(c | z) = pi_c p(z | c) / sum_c' pi_c' p(z | c')`` (each p(z | c) a
    :class:`sklearn.mixture.GaussianMixture`, summed over its components). A low confidence marks a
    sample that lies where classes overlap: a borderline, possibly mislabelled, image.

    **Unsupervised use:** fit on cluster ids instead of true labels, e.g.
    ``ClassGMMSampler().fit(z, KMeans(k).fit_predict(z))``; then ``label=`` picks a cluster.

    Args:
        n_components_per_class: Gaussians per class (default 1; capped at the class size).
        covariance_type: ``"full"`` or ``"diag"``.
        reg_covar: added to every covariance's diagonal.
        random_state: seeds the GMM fitting (k-means initialisation).
    """

    conditional = True

    def __init__(
        self, n_components_per_class: int = 1, covariance_type: str = "full", reg_covar: float = 1e-6, random_state: int = 0
    ) -> None:
        super().__init__()
        if covariance_type not in ("full", "diag"):
            raise ValueError(f"covariance_type must be 'full' or 'diag', got {covariance_type!r}")
        if int(n_components_per_class) < 1:
            raise ValueError(f"n_components_per_class must be >= 1, got {n_components_per_class}")
        self.n_components_per_class = int(n_components_per_class)
        self.covariance_type = covariance_type
        self.reg_covar = float(reg_covar)
        self.random_state = random_state

    def _fit(self, z: np.ndarray, labels: np.ndarray | None) -> None:
        from sklearn.mixture import GaussianMixture

        if labels is None:
            raise ValueError(
                "ClassGMMSampler needs labels: true classes, or cluster ids for an unsupervised sampler "
                "(e.g. sklearn.cluster.KMeans(k).fit_predict(z)). For no labels at all use GaussianSampler."
            )
        small = [(int(c), int(k)) for c, k in zip(self.classes_, self.class_counts_) if k < 2]
        if small:
            raise ValueError(f"classes {small} (class, count) have fewer than 2 latents; a Gaussian needs at least 2. "
                             "Drop or merge those classes.")
        self.priors_ = self.class_counts_ / self.class_counts_.sum()
        self.gmms_ = []
        self.sqrt_covs_ = []  # per class: (k, L, L)
        for c, count in zip(self.classes_, self.class_counts_):
            gmm = GaussianMixture(
                n_components=min(self.n_components_per_class, int(count)), covariance_type=self.covariance_type,
                reg_covar=self.reg_covar, random_state=self.random_state,
            ).fit(z[labels == c])
            covs = gmm.covariances_ if self.covariance_type == "full" else np.stack([np.diag(v) for v in gmm.covariances_])
            self.gmms_.append(gmm)
            self.sqrt_covs_.append(np.stack([_sqrt_cov(cv) for cv in covs]))

    def predict_proba(self, z: np.ndarray) -> np.ndarray:
        """Class posteriors P(c | z), (n, K), columns in the order of ``classes_``."""
        self._check_fitted()
        z = np.asarray(z, dtype=np.float64)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise ValueError(f"z must be (n, {self.latent_dim}); got shape {z.shape}")
        log_joint = np.stack([np.log(p) + g.score_samples(z) for p, g in zip(self.priors_, self.gmms_)], axis=1)
        log_joint -= log_joint.max(axis=1, keepdims=True)
        post = np.exp(log_joint)
        return post / post.sum(axis=1, keepdims=True)

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Most probable class for each code, (n,)."""
        return self.classes_[self.predict_proba(z).argmax(axis=1)]

    def assign(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Label = the most probable class under the mixture; confidence = its posterior."""
        post = self.predict_proba(z)
        idx = post.argmax(axis=1)
        return self.classes_[idx], post[np.arange(len(idx)), idx]

    def _draw(self, n, label, rng, scale):
        if label is None:
            cls_idx = rng.choice(len(self.classes_), size=n, p=self.priors_)
        else:
            cls_idx = np.full(n, int(np.searchsorted(self.classes_, label)))
        z = np.empty((n, self.latent_dim))
        eps = rng.standard_normal((n, self.latent_dim))
        for k in np.unique(cls_idx):
            rows = np.flatnonzero(cls_idx == k)
            gmm = self.gmms_[k]
            comp = rng.choice(len(gmm.weights_), size=len(rows), p=gmm.weights_)
            a = self.sqrt_covs_[k][comp]  # (r, L, L)
            z[rows] = gmm.means_[comp] + scale * np.einsum("rij,rj->ri", a, eps[rows])
        post = self.predict_proba(z)
        return z, self.classes_[cls_idx], post[np.arange(n), cls_idx]


# --------------------------------------------------------------------------------------------
# Explorers: interpolation and traversal
# --------------------------------------------------------------------------------------------
def latent_path(z_a: np.ndarray, z_b: np.ndarray, steps: int = 8, slerp: bool = False) -> np.ndarray:
    """``steps`` codes from z_a to z_b inclusive, (steps, L).

    Linear: ``(1 - t) z_a + t z_b``. Slerp (spherical, Shoemake 1985) keeps the norm varying smoothly
    along the great circle; it suits the VAE prior, whose mass lies on a shell of radius ~ sqrt(L),
    where a straight line would cut through the low-density centre.
    """
    if int(steps) < 2:
        raise ValueError(f"steps must be >= 2 (the two end points), got {steps}")
    z_a, z_b = np.asarray(z_a, dtype=np.float64), np.asarray(z_b, dtype=np.float64)
    t = np.linspace(0.0, 1.0, int(steps))[:, None]
    if slerp:
        na, nb = np.linalg.norm(z_a), np.linalg.norm(z_b)
        if na > 1e-12 and nb > 1e-12:
            omega = math.acos(float(np.clip(z_a @ z_b / (na * nb), -1.0, 1.0)))
            if omega > 1e-6:
                return (np.sin((1 - t) * omega) * z_a + np.sin(t * omega) * z_b) / math.sin(omega)
    return (1 - t) * z_a + t * z_b


class Interpolator:
    """Decode the path between the codes of two images: does the model morph one into the other
    through plausible images (a smooth latent space) or through garbage?

    Images: a torch tensor (C, H, W) / (1, C, H, W) in [0, 1], or one NumPy image in MedMNIST
    layout (H, W) / (H, W, C), e.g. ``data.images[i]``.
    """

    def interpolate(self, model: nn.Module, x_a: Any, x_b: Any, steps: int = 8, slerp: bool = False) -> np.ndarray:
        """-> uint8 images (steps, H, W[, C]); the first decodes x_a's code, the last x_b's."""
        check_decoder(model)
        z = latent_path(_encode_one(model, x_a, "x_a"), _encode_one(model, x_b, "x_b"), steps, slerp)
        self.last_z_ = z.astype(np.float32)
        return images_to_uint8(decode_latents(model, self.last_z_))


class LatentTraversal:
    """Move one code along one direction and decode: what does each direction of the latent space do?

    Directions are raw latent dimensions (``basis="raw"``) or principal components of the training
    latents (``basis="pca"``, sorted by explained variance). A plain AE has no reason to align
    meaningful factors with its coordinate axes, so raw dimensions often change several things at
    once; the principal components are far more meaningful there. Steps are multiples of the
    standard deviation of the training latents along the chosen direction.

    Attributes (after ``fit``): ``mean_`` (L,), ``sd_raw_`` (L,), ``components_`` (L, L) rows =
    principal directions, ``sd_pca_`` (L,), ``explained_variance_ratio_`` (L,).
    """

    def __init__(self) -> None:
        self.latent_dim: int | None = None

    def fit(self, z: np.ndarray, labels: np.ndarray | None = None) -> "LatentTraversal":
        """Fit on latents ``z (N, L)``; labels are accepted for interface symmetry and ignored."""
        z = _check_latents(z, "LatentTraversal.fit")
        self.latent_dim = z.shape[1]
        self.mean_ = z.mean(axis=0)
        self.sd_raw_ = z.std(axis=0, ddof=1)
        _, s, vt = np.linalg.svd(z - self.mean_, full_matrices=False)
        var = s**2 / (len(z) - 1)
        self.components_ = np.zeros((self.latent_dim, self.latent_dim))
        self.components_[: len(vt)] = vt
        self.sd_pca_ = np.zeros(self.latent_dim)
        self.sd_pca_[: len(var)] = np.sqrt(var)
        total = var.sum()
        self.explained_variance_ratio_ = self.sd_pca_**2 / total if total > 0 else np.zeros(self.latent_dim)
        return self

    def fit_from_model(self, model: nn.Module, data: Any, batch_size: int = 512) -> "LatentTraversal":
        """Embed ``data`` (eval mode) and fit on the codes."""
        from cae_lib.embed import embed

        return self.fit(embed(model, data, batch_size=batch_size, space="latent"))

    def latents(
        self, z_start: np.ndarray | None, direction: int, values: Sequence[float] = (-2, -1, 0, 1, 2), basis: str = "pca"
    ) -> np.ndarray:
        """Codes ``z_start + v * sd_d * u_d`` for each v in ``values``, (len(values), L).

        ``z_start=None`` starts from the mean training code.
        """
        if self.latent_dim is None:
            raise RuntimeError("LatentTraversal is not fitted yet: call .fit(z) (or .fit_from_model(model, data)) first.")
        if basis not in ("pca", "raw"):
            raise ValueError(f"basis must be 'pca' or 'raw', got {basis!r}")
        valid = isinstance(direction, (int, np.integer)) and not isinstance(direction, bool)
        if not valid or not 0 <= direction < self.latent_dim:
            raise ValueError(f"direction must be an integer in 0..{self.latent_dim - 1}, got {direction!r}")
        values = np.asarray(values, dtype=np.float64).reshape(-1)
        if values.size == 0:
            raise ValueError("values is empty: give the multiples of the standard deviation to visit, e.g. (-2, 0, 2)")
        start = self.mean_ if z_start is None else np.asarray(z_start, dtype=np.float64).reshape(-1)
        if start.shape != (self.latent_dim,):
            raise ValueError(f"z_start must have {self.latent_dim} values, got shape {np.shape(z_start)}")
        if basis == "pca":
            u, sd = self.components_[direction], self.sd_pca_[direction]
        else:
            u, sd = np.eye(self.latent_dim)[direction], self.sd_raw_[direction]
        return start[None, :] + values[:, None] * sd * u[None, :]

    def traverse(
        self, model: nn.Module, start: Any = None, direction: int = 0,
        values: Sequence[float] = (-2, -1, 0, 1, 2), basis: str = "pca",
    ) -> np.ndarray:
        """Decode a traversal -> uint8 images (len(values), H, W[, C]).

        Args:
            start: an image (see :class:`Interpolator`), a code z (L,), or ``None`` (the mean code).
                A 1-D array or tensor of length L is taken as a code.
            direction: index of the dimension or principal component (0 = largest variance).
            values: multiples of the standard deviation along that direction.
        """
        if self.latent_dim is None:
            raise RuntimeError("LatentTraversal is not fitted yet: call .fit(z) (or .fit_from_model(model, data)) first.")
        check_decoder(model, self.latent_dim)
        if isinstance(start, torch.Tensor):
            start = start.detach().cpu()
        if start is None or np.ndim(start) == 1 or np.shape(start) == (1, self.latent_dim):
            z_start = None if start is None else np.asarray(start, dtype=np.float64).reshape(-1)
        else:
            z_start = _encode_one(model, start, "start")
        z = self.latents(z_start, direction, values, basis)
        self.last_z_ = z.astype(np.float32)
        return images_to_uint8(decode_latents(model, self.last_z_))


# --------------------------------------------------------------------------------------------
# Quality checks
# --------------------------------------------------------------------------------------------
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
    """(n, D) uint8 or floats -> float32 tensor; uint8 is scaled to [0, 1]."""
    if chunk.dtype == np.uint8:
        return torch.from_numpy(np.ascontiguousarray(chunk)).float().div_(255.0)
    t = torch.from_numpy(np.ascontiguousarray(chunk, dtype=np.float32))
    if not torch.isfinite(t).all():
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


# --------------------------------------------------------------------------------------------
# Saving
# --------------------------------------------------------------------------------------------
def save_samples_npz(
    samples: Samples,
    path: str | os.PathLike,
    split: str = "train",
    labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    empty_other_splits: bool = False,
) -> Path:
    """Write samples as an .npz in MedMNIST layout, readable by ``cae_lib.data.load_dataset(path, split=split)``.

    The file holds ``{split}_images`` (uint8, (N, H, W) or (N, H, W, C)) and ``{split}_labels``
    (uint8 (N, 1)). By default only that split is written: loading another split raises a clear
    "no such split" error rather than silently returning generated images as test data. With
    ``empty_other_splits=True`` the other splits are written as empty arrays of the right shape,
    for tools that insist on all six MedMNIST keys. The file appears atomically.

    Args:
        labels: overrides ``samples.labels`` (needed when the sampler had no labels: -1 cannot be saved).
        class_names, metadata: stored alongside (e.g. the sampler and model configs).
    """
    labs = np.asarray(samples.labels if labels is None else labels).reshape(-1).astype(np.int64)
    if len(labs) != len(samples.images):
        raise ValueError(f"{len(samples.images)} images but {len(labs)} labels")
    if (labs < 0).any():
        raise ValueError(
            "some samples have no label (-1): fit the sampler with labels (true classes or cluster ids), "
            "or pass labels=... to save_samples_npz"
        )
    images = np.asarray(samples.images)
    splits = {split: (images, labs)}
    if empty_other_splits:
        for other in ("train", "val", "test"):
            if other != split:
                splits[other] = (np.zeros((0,) + images.shape[1:], np.uint8), np.zeros(0, np.int64))
    from cae_lib.data import save_npz

    return save_npz(path, splits, class_names=class_names, metadata=metadata)


__all__ = [
    "NO_LABEL",
    "ClassGMMSampler",
    "GaussianSampler",
    "Interpolator",
    "LatentSampler",
    "LatentSamples",
    "LatentTraversal",
    "MemorisationReport",
    "PriorSampler",
    "Samples",
    "check_decoder",
    "decode_latents",
    "diversity",
    "images_to_uint8",
    "label_agreement",
    "latent_path",
    "memorisation_check",
    "nearest_training_distance",
    "save_samples_npz",
]
