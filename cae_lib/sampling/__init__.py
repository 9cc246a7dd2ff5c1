"""Latent samplers: draw codes z, decode them into new (labelled) images, and check the results.

Ferrante et al. (2023) propose the contrastive autoencoder "for data augmentation in medical image
processing, due to its sampling abilities in a variational setting". This package makes that
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

Where things are:

* :mod:`cae_lib.sampling.samples`: the result containers, input checks, decoding, ``save_samples_npz``.
* :mod:`cae_lib.sampling.base`: :class:`LatentSampler`, the interface every sampler shares.
* :mod:`cae_lib.sampling.samplers`: :class:`PriorSampler`, :class:`GaussianSampler`, :class:`ClassGMMSampler`.
* :mod:`cae_lib.sampling.explorers`: :func:`latent_path`, :class:`Interpolator`, :class:`LatentTraversal`.
* :mod:`cae_lib.sampling.quality`: the memorisation, label-agreement and diversity checks.

Everything public is importable from ``cae_lib.sampling`` itself.
"""

from cae_lib.sampling.base import LatentSampler
from cae_lib.sampling.explorers import Interpolator, LatentTraversal, latent_path
from cae_lib.sampling.quality import (
    MemorisationReport,
    diversity,
    label_agreement,
    memorisation_check,
    nearest_training_distance,
)
from cae_lib.sampling.samplers import ClassGMMSampler, GaussianSampler, PriorSampler
from cae_lib.sampling.samples import (
    NO_LABEL,
    LatentSamples,
    Samples,
    check_decoder,
    decode_latents,
    images_to_uint8,
    save_samples_npz,
)

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
