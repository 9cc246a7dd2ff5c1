"""Three latent samplers, each a :class:`~cae_lib.sampling.base.LatentSampler`.

* :class:`PriorSampler`: z ~ N(0, I), the prior of the VAE variant.
* :class:`GaussianSampler`: one Gaussian fitted to all training latents (the authors' approach).
* :class:`ClassGMMSampler`: one Gaussian (or a small GMM) per class, so ``label=`` picks the class.

All draw from ``np.random.default_rng(seed)``; ``scale`` multiplies the standard deviation.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch.nn as nn
from sklearn.mixture import GaussianMixture

from cae_lib.sampling.base import LatentSampler
from cae_lib.sampling.samples import Samples


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

    def _draw(
        self, n: int, label: int | None, rng: np.random.Generator, scale: float
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
        return rng.standard_normal((n, self.latent_dim)) * scale, None, None

    def sample(
        self, model: nn.Module, n: int, label: int | None = None, seed: int = 0, scale: float = 1.0,
        batch_size: int = 256,
    ) -> Samples:
        """Draw ``n`` codes from N(0, I) and decode them; warns for a plain AE (see the class docstring)."""
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

    def _draw(
        self, n: int, label: int | None, rng: np.random.Generator, scale: float
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
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

    def _draw(
        self, n: int, label: int | None, rng: np.random.Generator, scale: float
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
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
