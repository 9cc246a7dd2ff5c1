"""Latent samplers, explorers, quality checks and saving (cae_lib.sampling).

Everything runs on tiny models (latent_dim 4, width 4) and synthetic data; the one trained model
(a few hundred milliseconds per epoch) is shared by the module.
"""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
from scipy.stats import binom, multivariate_normal

from cae_lib.augment import ContrastiveAugment
from cae_lib.config import AugmentConfig, LossConfig, ModelConfig, TrainConfig
from cae_lib.embed import embed
from cae_lib.losses import CAEObjective
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.sampling import (
    ClassGMMSampler,
    GaussianSampler,
    Interpolator,
    LatentTraversal,
    PriorSampler,
    Samples,
    diversity,
    label_agreement,
    latent_path,
    memorisation_check,
    nearest_training_distance,
    save_samples_npz,
)
from cae_lib.batches import ImageBatches
from cae_lib.trainer import Trainer

L = 4


# --------------------------------------------------------------------------------------------
# Fixtures
# --------------------------------------------------------------------------------------------
def blobs(n_per_class=(60, 20), sep: float = 6.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs in L dims; class c is centred at sep * c on every axis."""
    rng = np.random.default_rng(seed)
    z = np.concatenate([rng.normal(sep * c, 1.0, size=(k, L)) for c, k in enumerate(n_per_class)])
    y = np.concatenate([np.full(k, c) for c, k in enumerate(n_per_class)])
    return z, y


def tiny_model(channels: int = 1, variant: str = "ae") -> ContrastiveAutoencoder:
    torch.manual_seed(0)
    return ContrastiveAutoencoder(ModelConfig(in_channels=channels, latent_dim=L, width=4, variant=variant)).eval()


def halves(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Class 0: bright left half; class 1: bright right half; faint noise everywhere."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    img = rng.integers(0, 40, size=(n, 28, 28))
    img[labels == 0, :, :14] += 180
    img[labels == 1, :, 14:] += 180
    return img.astype(np.uint8), labels


def pixel_classifier(images: np.ndarray) -> np.ndarray:
    """The 'external supervised classifier' for the halves data: which half is brighter."""
    return np.where(images[:, :, :14].mean((1, 2)) > images[:, :, 14:].mean((1, 2)), 0, 1)


class Data:
    def __init__(self, images, labels):
        self.images, self.labels = images, labels


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny models gain nothing from threads, and the CPU is shared: use one, then restore."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def trained(_one_thread):
    """A tiny AE trained for 10 epochs (~2-3 s on one CPU core) on the halves data."""
    images, labels = halves(64)
    torch.manual_seed(0)
    model = ContrastiveAutoencoder(ModelConfig(latent_dim=L, width=4))
    # reconstruction only, identical views: the simplest objective that makes the decoder faithful
    objective = CAEObjective(LossConfig(contrastive_weight=0.0), ContrastiveAugment(AugmentConfig(strength=0.0)))
    cfg = TrainConfig(epochs=10, batch_size=32, lr=1e-2, seed=0, device="cpu")
    history = Trainer(model, objective, ImageBatches(images, labels), cfg, progress=False).fit()
    assert history[-1]["recon"] < 0.5 * history[0]["recon"]
    return model.eval(), Data(images, labels)


@contextlib.contextmanager
def _no_warning():
    """Fail on any warning inside the block."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


#: the blobs are far from N(0, I), which PriorSampler.fit rightly points out
ignore_prior_fit_warning = pytest.mark.filterwarnings("ignore:these latents do not look like")

SAMPLERS = {
    "prior": lambda: PriorSampler(),
    "gauss-full": lambda: GaussianSampler(),
    "gauss-diag": lambda: GaussianSampler(covariance="diag"),
    "classgmm": lambda: ClassGMMSampler(),
    "classgmm-2diag": lambda: ClassGMMSampler(n_components_per_class=2, covariance_type="diag"),
}


# --------------------------------------------------------------------------------------------
# Reproducibility and the distributions themselves
# --------------------------------------------------------------------------------------------
@ignore_prior_fit_warning
@pytest.mark.parametrize("name", SAMPLERS)
def test_same_seed_same_samples_different_seed_different(name):
    z, y = blobs()
    sampler = SAMPLERS[name]().fit(z, y)
    a, b, c = (sampler.sample_latents(50, seed=s) for s in (7, 7, 8))
    np.testing.assert_array_equal(a.z, b.z)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.confidence, b.confidence)
    assert not np.allclose(a.z, c.z)
    assert a.z.dtype == np.float32 and a.z.shape == (50, L)
    assert a.labels.dtype == np.int64 and set(a.labels) <= {0, 1}
    assert np.all((a.confidence >= 0) & (a.confidence <= 1))


@ignore_prior_fit_warning
@pytest.mark.parametrize("name", SAMPLERS)
def test_decoded_samples_are_seed_reproducible(name):
    model = tiny_model()
    z, y = blobs()
    sampler = SAMPLERS[name]().fit(z, y)
    with pytest.warns(UserWarning) if name == "prior" else _no_warning():
        s1 = sampler.sample(model, 6, seed=3)
    with pytest.warns(UserWarning) if name == "prior" else _no_warning():
        s2 = sampler.sample(model, 6, seed=3)
        s3 = sampler.sample(model, 6, seed=4)
    np.testing.assert_array_equal(s1.images, s2.images)
    assert torch.equal(s1.x, s2.x)
    assert not torch.equal(s1.x, s3.x)


def test_gaussian_sampler_reproduces_the_fitted_moments_and_scale_is_a_temperature():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(400, L)) @ np.array([[2.0, 0, 0, 0], [1.0, 1, 0, 0], [0, 0, 0.5, 0], [0, 0, 0, 3]]) + 5
    sampler = GaussianSampler().fit(z)
    s = sampler.sample_latents(20000, seed=0).z.astype(np.float64)
    np.testing.assert_allclose(s.mean(0), z.mean(0), atol=0.1)
    np.testing.assert_allclose(np.cov(s, rowvar=False), np.cov(z, rowvar=False), atol=0.15, rtol=0.05)
    hot = sampler.sample_latents(20000, seed=0, scale=2.0).z
    np.testing.assert_allclose(hot.std(0) / s.std(0), 2.0, rtol=1e-4)  # same noise, twice the spread
    frozen = sampler.sample_latents(5, seed=0, scale=0.0).z
    np.testing.assert_allclose(frozen, np.repeat(z.mean(0, keepdims=True), 5, 0), rtol=1e-6)
    assert diversity(frozen) == 0.0


def test_prior_sampler_is_standard_normal_and_needs_only_latent_dim():
    s = PriorSampler(latent_dim=3).sample_latents(20000, seed=0)
    assert s.z.shape == (20000, 3)
    np.testing.assert_allclose(s.z.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(s.z.std(0), 1, atol=0.03)
    assert (s.labels == -1).all() and np.isnan(s.confidence).all()  # fitted without labels


def test_prior_sampler_warns_for_a_plain_ae_but_not_for_a_vae():
    z, y = blobs(sep=0.5)
    z = (z - z.mean(0)) / z.std(0)
    sampler = PriorSampler().fit(z, y)
    with pytest.warns(UserWarning, match="N\\(0, I\\)"):
        sampler.sample(tiny_model(variant="ae"), 4)
    with _no_warning():
        sampler.sample(tiny_model(variant="vae"), 4)
    with pytest.warns(UserWarning, match="do not look like N\\(0, I\\)"):
        PriorSampler().fit(z * 10 + 50)


def test_unconditional_samplers_label_by_nearest_centroid():
    z, y = blobs(sep=2.0)
    sampler = GaussianSampler().fit(z, y)
    s = sampler.sample_latents(300, seed=0)
    centroids = np.stack([z[y == c].mean(0) for c in (0, 1)])
    d = ((s.z[:, None].astype(np.float64) - centroids[None]) ** 2).sum(-1)
    np.testing.assert_array_equal(s.labels, d.argmin(1))
    assert np.all(s.confidence >= 0.5 - 1e-12)  # the argmax of a 2-class posterior
    far = sampler.assign(centroids + np.array([[-5.0], [5.0]]))  # well beyond each centroid
    np.testing.assert_array_equal(far[0], [0, 1])
    assert np.all(far[1] > 0.99)


# --------------------------------------------------------------------------------------------
# ClassGMMSampler
# --------------------------------------------------------------------------------------------
def test_class_gmm_picks_the_class_and_matches_the_class_frequencies():
    z, y = blobs(n_per_class=(60, 20))
    sampler = ClassGMMSampler().fit(z, y)
    one = sampler.sample_latents(200, label=1, seed=0)
    assert (one.labels == 1).all()
    np.testing.assert_allclose(one.z.mean(0), z[y == 1].mean(0), atol=0.3)
    assert one.confidence.min() > 0.99  # blobs 6 sd apart
    mixed = sampler.sample_latents(4000, seed=0)
    assert abs((mixed.labels == 0).mean() - 0.75) < 0.03  # 60 : 20 in the training latents


def test_class_gmm_confidence_is_the_mixture_posterior():
    """Oracle: with one full-covariance Gaussian per class, P(c | z) computed with scipy."""
    z, y = blobs(sep=1.5, seed=2)
    sampler = ClassGMMSampler(reg_covar=1e-6).fit(z, y)
    s = sampler.sample_latents(100, seed=1)
    priors = np.bincount(y) / len(y)
    # sklearn's one-component GMM is the maximum-likelihood Gaussian: mean and biased covariance
    gaussians = [multivariate_normal(z[y == c].mean(0), np.cov(z[y == c], rowvar=False, bias=True) + 1e-6 * np.eye(L)) for c in (0, 1)]
    log_joint = np.stack([np.log(priors[c]) + gaussians[c].logpdf(s.z) for c in (0, 1)], axis=1)
    post = np.exp(log_joint - log_joint.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    np.testing.assert_allclose(s.confidence, post[np.arange(100), s.labels], rtol=1e-4, atol=1e-6)
    assert s.confidence.min() < 0.5  # overlapping classes: some samples sit on the other side


def test_class_gmm_works_with_cluster_ids_for_an_unsupervised_sampler():
    from sklearn.cluster import KMeans

    z, _ = blobs(n_per_class=(30, 30, 30))
    clusters = KMeans(3, n_init=1, random_state=0).fit_predict(z)
    sampler = ClassGMMSampler(n_components_per_class=2).fit(z, clusters)
    for k in range(3):
        s = sampler.sample_latents(50, label=k, seed=k)
        assert (s.labels == k).all()
        assert (sampler.predict(s.z) == k).mean() > 0.95


def test_per_class_samples_re_encode_to_their_own_class(trained):
    """Decode per-class samples, encode them again: they must land nearest their own class's
    component far more often than chance (1/2), and an external classifier must agree."""
    model, data = trained
    sampler = ClassGMMSampler().fit_from_model(model, data)
    hits, agree = 0, []
    n = 40
    for c in (0, 1):
        s = sampler.sample(model, n, label=c, seed=c)
        hits += int((sampler.predict(embed(model, s.images)) == c).sum())
        agree.append(label_agreement(s.labels, pixel_classifier(s.images)))
    assert binom.sf(hits - 1, 2 * n, 0.5) < 1e-6, f"only {hits}/{2 * n} re-encoded samples kept their class"
    assert hits / (2 * n) >= 0.9
    assert min(agree) >= 0.9


# --------------------------------------------------------------------------------------------
# Decoding: shapes, dtypes, eval mode
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels, shape", [(1, (5, 28, 28)), (3, (5, 28, 28, 3))])
def test_samples_have_medmnist_layout(channels, shape):
    model = tiny_model(channels)
    z, y = blobs()
    s = ClassGMMSampler().fit(z, y).sample(model, 5, seed=0)
    assert isinstance(s, Samples) and len(s) == 5
    assert s.images.dtype == np.uint8 and s.images.shape == shape
    assert s.x.dtype == torch.float32 and s.x.shape == (5, channels, 28, 28) and not s.x.requires_grad
    assert 0 <= s.x.min() and s.x.max() <= 1
    assert s.z.shape == (5, L) and s.labels.dtype == np.int64 and s.confidence.dtype == np.float64
    expected = (s.x * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
    np.testing.assert_array_equal(s.images, expected[..., 0] if channels == 1 else expected)


def test_decoding_runs_in_eval_mode_and_restores_the_mode():
    model = tiny_model().train()
    z, y = blobs()
    s = GaussianSampler().fit(z, y).sample(model, 8, seed=0)
    assert model.training  # put back as it was
    model.eval()
    with torch.no_grad():
        ref = model.decode(torch.from_numpy(s.z))
    torch.testing.assert_close(s.x, ref)  # BatchNorm used running statistics, not the batch's


# --------------------------------------------------------------------------------------------
# Interpolation and traversal
# --------------------------------------------------------------------------------------------
def test_latent_path_linear_and_slerp():
    a, b = np.array([1.0, 0, 0, 0]), np.array([0, 1.0, 0, 0])
    lin = latent_path(a, b, steps=3)
    np.testing.assert_allclose(lin, [a, (a + b) / 2, b])
    sl = latent_path(a, b, steps=5, slerp=True)
    np.testing.assert_allclose(sl[[0, -1]], [a, b], atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(sl, axis=1), 1.0)  # stays on the sphere
    with pytest.raises(ValueError, match="steps"):
        latent_path(a, b, steps=1)


def test_interpolator_ends_decode_the_two_images(trained):
    model, data = trained
    ip = Interpolator()
    imgs = ip.interpolate(model, data.images[0], data.images[1], steps=6)
    assert imgs.shape == (6, 28, 28) and imgs.dtype == np.uint8
    x = torch.from_numpy(data.images[:2]).float().div(255).unsqueeze(1)
    with torch.no_grad():
        rec = model.decode(model.encode(x)[0])
    np.testing.assert_array_equal(imgs[[0, -1]], (rec[:, 0] * 255).round().to(torch.uint8).numpy())
    # a channels-first tensor gives the same result as the MedMNIST-layout array
    same = ip.interpolate(model, x[0], x[1:2], steps=6, slerp=True)
    assert same.shape == (6, 28, 28)
    np.testing.assert_array_equal(same[[0, -1]], imgs[[0, -1]])
    assert ip.last_z_.shape == (6, L)


def test_traversal_pca_finds_the_main_direction_and_steps_in_sd_units():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(500, L)) * np.array([0.1, 0.2, 5.0, 0.3])  # dimension 2 dominates
    tr = LatentTraversal().fit(z)
    np.testing.assert_allclose(tr.components_ @ tr.components_.T, np.eye(L), atol=1e-10)
    assert abs(tr.components_[0, 2]) > 0.99 and tr.explained_variance_ratio_[0] > 0.95
    path = tr.latents(None, direction=1, values=[-1, 0, 2], basis="raw")
    np.testing.assert_allclose(path[1], z.mean(0))
    np.testing.assert_allclose(path[2] - path[1], np.eye(L)[1] * 2 * z[:, 1].std(ddof=1))
    step = tr.latents(np.zeros(L), direction=0, values=[1.0], basis="pca")[0]
    np.testing.assert_allclose(np.linalg.norm(step), tr.sd_pca_[0])


def test_traverse_decodes_from_an_image_or_a_code(trained):
    model, data = trained
    tr = LatentTraversal().fit_from_model(model, data)
    from_image = tr.traverse(model, data.images[3], direction=0, values=(-2, 0, 2))
    assert from_image.shape == (3, 28, 28) and from_image.dtype == np.uint8
    z3 = embed(model, data.images[3:4])[0]
    np.testing.assert_array_equal(tr.traverse(model, z3, direction=0, values=(-2, 0, 2)), from_image)
    assert tr.traverse(model, None, direction=1, basis="raw").shape == (5, 28, 28)


# --------------------------------------------------------------------------------------------
# Quality checks on known inputs
# --------------------------------------------------------------------------------------------
def test_nearest_training_distance_known_values():
    train = np.stack([np.zeros((28, 28), np.uint8), np.full((28, 28), 255, np.uint8)])
    grey = np.full((1, 28, 28), 0.25, np.float32)  # floats in [0, 1]
    np.testing.assert_allclose(nearest_training_distance(grey, train), [0.25], rtol=1e-6)
    copies = nearest_training_distance(train[::-1].copy(), train)
    np.testing.assert_array_equal(copies, [0.0, 0.0])
    as_tensor = torch.from_numpy(train).float().div(255).unsqueeze(1)  # (n, C, H, W) in [0, 1]
    np.testing.assert_array_equal(nearest_training_distance(as_tensor, train), [0.0, 0.0])


def test_memorisation_check_flags_copies_but_not_novel_images():
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(120, 28, 28), dtype=np.uint8)
    report = memorisation_check(train[:30], train, batch_size=32)  # exact copies
    np.testing.assert_array_equal(report.distances, 0.0)
    assert report.flagged.all() and report.flagged_fraction == 1.0
    assert report.train_nn_distances.min() > 0  # each reference image was compared with the others only
    assert "possible memorisation" in report.summary()
    novel = memorisation_check(rng.integers(0, 256, size=(30, 28, 28), dtype=np.uint8), train, batch_size=32)
    assert novel.flagged_fraction < 0.3 and 0.8 < novel.distance_ratio < 1.25
    assert "no sign of memorisation" in novel.summary()


def test_diversity_known_values():
    same = np.repeat(np.full((1, 28, 28), 77, np.uint8), 10, axis=0)
    assert diversity(same) == 0.0
    black_white = np.stack([np.zeros((28, 28, 3), np.uint8), np.full((28, 28, 3), 255, np.uint8)])
    assert diversity(black_white) == pytest.approx(1.0)
    codes = np.array([[0.0, 0.0], [3.0, 4.0]])
    assert diversity(codes) == pytest.approx(5 / np.sqrt(2))  # Euclidean / sqrt(L)
    rng = np.random.default_rng(0)
    many = rng.random((500, 16)).astype(np.float32)
    assert diversity(many, max_images=50, seed=1) == diversity(many, max_images=50, seed=1)


def test_label_agreement_known_values_and_errors():
    assert label_agreement([0, 1, 1, -1], [0, 1, 0, 1]) == pytest.approx(2 / 3)  # -1 is ignored
    assert label_agreement(np.array([2, 2]), torch.tensor([2, 2])) == 1.0
    with pytest.raises(ValueError, match="entries"):
        label_agreement([0, 1], [0])
    with pytest.raises(ValueError, match="no labelled samples"):
        label_agreement([-1, -1], [0, 1])


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------
@ignore_prior_fit_warning
@pytest.mark.parametrize("name", SAMPLERS)
def test_unfitted_sampler_says_to_call_fit(name):
    sampler = SAMPLERS[name]()
    with pytest.raises(RuntimeError, match=rf"{type(sampler).__name__} is not fitted.*\.fit\("):
        sampler.sample_latents(3)
    with pytest.raises(RuntimeError, match="not fitted"):
        sampler.sample(tiny_model(), 3)
    with pytest.raises(RuntimeError, match=r"LatentTraversal is not fitted.*\.fit\("):
        LatentTraversal().latents(None, 0)


def test_unknown_label_lists_the_valid_ones():
    z, y = blobs()
    sampler = ClassGMMSampler().fit(z, y + 3)  # labels 3 and 4
    with pytest.raises(ValueError, match=r"unknown label 0; valid labels are \[3, 4\]"):
        sampler.sample_latents(2, label=0)
    with pytest.raises(ValueError, match="ClassGMMSampler"):
        GaussianSampler().fit(z, y).sample_latents(2, label=0)  # unconditional sampler


@pytest.mark.parametrize("n", [0, -3])
def test_non_positive_n(n):
    with pytest.raises(ValueError, match="positive"):
        GaussianSampler().fit(*blobs()).sample_latents(n)


def test_model_without_decoder():
    sampler = GaussianSampler().fit(*blobs())
    for not_an_autoencoder in (nn.Linear(L, 2), {"model": {}, "config": {}}):
        with pytest.raises(TypeError, match="has no decoder.*sampling needs an autoencoder"):
            sampler.sample(not_an_autoencoder, 2)
        with pytest.raises(TypeError, match="has no decoder"):
            Interpolator().interpolate(not_an_autoencoder, np.zeros((28, 28), np.uint8), np.zeros((28, 28), np.uint8))


@ignore_prior_fit_warning
def test_nan_latents():
    z, y = blobs()
    z[5, 1] = np.nan
    for sampler in (GaussianSampler(), ClassGMMSampler(), PriorSampler(), LatentTraversal()):
        with pytest.raises(ValueError, match="NaN.*row 5"):
            sampler.fit(z, y)


def test_latent_dimension_mismatch():
    z = np.random.default_rng(0).normal(size=(50, 6))
    with pytest.raises(ValueError, match="fitted on 6-dimensional latents but the model's latent_dim is 4"):
        GaussianSampler().fit(z).sample(tiny_model(), 2)
    with pytest.raises(ValueError, match="latent dimension mismatch"):
        LatentTraversal().fit(z).traverse(tiny_model(), None, 0)


def test_other_bad_inputs():
    z, y = blobs()
    with pytest.raises(ValueError, match="needs labels"):
        ClassGMMSampler().fit(z)
    with pytest.raises(ValueError, match="one per latent"):
        GaussianSampler().fit(z, y[:-1])
    with pytest.raises(ValueError, match="2-D"):
        GaussianSampler().fit(z[0])
    with pytest.raises(ValueError, match="scale"):
        GaussianSampler().fit(z).sample_latents(2, scale=-1)
    with pytest.raises(ValueError, match="same size"):
        nearest_training_distance(np.zeros((2, 28, 28), np.uint8), np.zeros((2, 28, 28, 3), np.uint8))
    with pytest.raises(ValueError, match="channel"):
        Interpolator().interpolate(tiny_model(1), np.zeros((28, 28, 3), np.uint8), np.zeros((28, 28, 3), np.uint8))
    with pytest.raises(ValueError, match="direction"):
        LatentTraversal().fit(z).latents(None, direction=L)


# --------------------------------------------------------------------------------------------
# Saving in MedMNIST layout
# --------------------------------------------------------------------------------------------
def test_save_samples_round_trip_through_the_data_layer(tmp_path):
    data_mod = pytest.importorskip("cae_lib.data", reason="cae_lib.data (the data layer) is not importable yet")
    model = tiny_model(3)
    samples = ClassGMMSampler().fit(*blobs()).sample(model, 7, seed=0)
    path = save_samples_npz(samples, tmp_path / "gen" / "samples.npz", class_names=["a", "b"], metadata={"seed": 0})
    with np.load(path) as f:
        assert f["train_images"].shape == (7, 28, 28, 3) and f["train_labels"].shape == (7, 1)
        assert f["train_labels"].dtype == np.uint8
    loaded = data_mod.load_dataset(path, split="train")
    np.testing.assert_array_equal(loaded.images, samples.images)
    np.testing.assert_array_equal(loaded.labels, samples.labels)
    assert tuple(loaded.class_names) == ("a", "b")
    with pytest.raises(ValueError, match="no 'test' split"):
        data_mod.load_dataset(path, split="test")

    full = save_samples_npz(samples, tmp_path / "full.npz", split="val", empty_other_splits=True)
    assert len(data_mod.load_dataset(full, split="val").images) == 7
    empty = data_mod.load_dataset(full, split="test")
    assert empty.images.shape == (0, 28, 28, 3)


def test_save_samples_refuses_missing_labels(tmp_path):
    samples = GaussianSampler().fit(blobs()[0]).sample(tiny_model(), 3)  # fitted without labels -> -1
    with pytest.raises(ValueError, match="no label"):
        save_samples_npz(samples, tmp_path / "s.npz")
    path = save_samples_npz(samples, tmp_path / "s.npz", labels=np.zeros(3, int))
    with np.load(path) as f:
        np.testing.assert_array_equal(f["train_labels"], np.zeros((3, 1)))
