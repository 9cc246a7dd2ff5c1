"""Tests for cae_lib.cluster: recovery of obvious clusters, determinism, errors."""

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from cae_lib.cluster import (
    METHODS,
    LatentClusterer,
    choose_k_curves,
    cluster_latents,
    majority_vote_curve,
    subgroup_report,
)
from cae_lib.metrics import hungarian_accuracy


def blobs(n_per: int = 40, k: int = 3, dim: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Well-separated Gaussian blobs: centres 20 apart, unit noise. Returns z (N, dim), y (N,)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(k, dim)) * 20
    y = np.repeat(np.arange(k), n_per)
    return centres[y] + rng.normal(size=(len(y), dim)), y


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("preprocess", [None, "standardize", "pca", "l2"])
def test_blobs_are_recovered(method, preprocess):
    z, y = blobs()
    z = z + 50  # move away from the origin so l2 normalisation keeps the blobs apart
    labels = cluster_latents(z, 3, method=method, preprocess=preprocess, pca_dim=3)
    assert labels.shape == y.shape
    assert set(np.unique(labels)) == {0, 1, 2}
    assert hungarian_accuracy(y, labels) == 1.0


@pytest.mark.parametrize("method", METHODS)
def test_seeded_determinism(method):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(120, 4))  # no structure: the result depends on the seed, if anything does
    a = cluster_latents(z, 4, method=method, seed=3)
    b = cluster_latents(z, 4, method=method, seed=3)
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("method", METHODS)
def test_predict_on_new_points(method):
    z, y = blobs(seed=2)
    z_new, y_new = blobs(n_per=10, seed=2)  # same centres, fresh noise
    model = LatentClusterer(3, method=method, preprocess="standardize").fit(z)
    assert model.centers_.shape == (3, z.shape[1])
    np.testing.assert_array_equal(model.predict(z), model.labels_)
    pred = model.predict(z_new)
    assert pred.shape == (30,)
    assert hungarian_accuracy(y_new, pred) == 1.0
    fitted = LatentClusterer(3, method=method).fit(z)
    np.testing.assert_array_equal(LatentClusterer(3, method=method).fit_predict(z), fitted.labels_)


def test_centers_live_in_the_preprocessed_space():
    z, _ = blobs(dim=10)
    model = LatentClusterer(3, preprocess="pca", pca_dim=2).fit(z)
    assert model.centers_.shape == (3, 2)
    model = LatentClusterer(3, preprocess="l2").fit(z + 50)
    np.testing.assert_allclose(np.linalg.norm(model.transform(z + 50), axis=1), 1.0)


def test_gmm_diag_option():
    z, y = blobs()
    model = LatentClusterer(3, method="gmm", covariance_type="diag").fit(z)
    assert model.model_.covariance_type == "diag"
    assert hungarian_accuracy(y, model.labels_) == 1.0


def test_choose_k_curves():
    z, _ = blobs(k=4)
    curves = choose_k_curves(z, k_range=range(2, 7))
    assert curves["k"] == [2, 3, 4, 5, 6]
    assert len(curves["inertia"]) == len(curves["silhouette"]) == 5
    assert all(a >= b for a, b in zip(curves["inertia"], curves["inertia"][1:]))  # inertia falls with k
    assert curves["k"][int(np.argmax(curves["silhouette"]))] == 4  # the silhouette finds the 4 blobs


def test_choose_k_curves_subsamples_silhouette():
    z, _ = blobs(n_per=1000, k=3, dim=2)
    curves = choose_k_curves(z, k_range=[3], silhouette_max_points=500)
    assert 0.5 < curves["silhouette"][0] <= 1.0


def test_subgroup_report():
    z, y = blobs(n_per=30, k=2)
    images = np.arange(len(z))[:, None, None] * np.ones((1, 4, 4))
    report = subgroup_report(z, y, k=6, images=images, n_typical=5)
    assert len(report) == 6
    assert sum(r["size"] for r in report) == len(z)
    for r in report:
        assert 0.0 <= r["purity"] <= 1.0
        assert sum(r["label_counts"].values()) == r["size"]
        assert r["majority_label"] in (0, 1)
        assert 1 <= len(r["typical_indices"]) <= 5
        np.testing.assert_array_equal(r["typical_images"][:, 0, 0], r["typical_indices"])
    # separated blobs: every subgroup lies inside one class
    assert all(r["purity"] == 1.0 for r in report)


def test_subgroup_report_typical_members_are_nearest_the_centre():
    z = np.array([[0.0], [1.0], [-1.0], [3.0], [-3.0]])
    report = subgroup_report(z, None, k=1, n_typical=3)
    np.testing.assert_array_equal(report[0]["typical_indices"], [0, 1, 2])
    assert report[0]["purity"] is None


def test_subgroup_report_describes_given_clusters_as_they_are():
    """The clusters of another fit (the protocol's, fitted on train) are described, not re-clustered."""
    z = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [30.0]])
    given = np.array([1, 1, 0, 0, 0, 1])  # not what k-means would find: 30 sits with 0 and 1
    report = subgroup_report(z, np.array([0, 0, 0, 1, 1, 1]), k=2, n_typical=2, clusters=given)
    assert [r["size"] for r in report] == [3, 3]
    assert report[0]["label_counts"] == {0: 1, 1: 2} and report[1]["label_counts"] == {0: 2, 1: 1}
    # cluster 1 = {0, 1, 30}, mean 10.33: nearest are 1 (index 1), then 0 (index 0)
    np.testing.assert_array_equal(report[1]["typical_indices"], [1, 0])
    np.testing.assert_array_equal(report[0]["typical_indices"], [3, 4])  # mean 7.67: 10, then 11
    with pytest.raises(ValueError, match="one id in 0 .. 1"):
        subgroup_report(z, None, k=2, clusters=np.array([0, 1, 2, 0, 0, 0]))


def test_majority_vote_curve_shows_the_pitfall():
    z, y = blobs(n_per=30, k=2, seed=4)
    curve = majority_vote_curve(z, y, k_range=[2, 5, 20])
    assert curve["k"] == [2, 5, 20]
    assert curve["hungarian_acc"][0] == 1.0 and curve["majority_vote_acc"][0] == 1.0
    # separated blobs: majority vote stays at 1, Hungarian drops once k > number of classes
    assert curve["majority_vote_acc"][-1] == 1.0
    assert curve["hungarian_acc"][-1] < 0.5
    assert curve["floor"] == 0.5 and curve["n_classes"] == 2


def test_clear_errors():
    z, _ = blobs()
    with pytest.raises(ValueError, match="at least 1"):
        cluster_latents(z, 0)
    with pytest.raises(ValueError, match="larger than the number of samples"):
        cluster_latents(z, len(z) + 1)
    with pytest.raises(ValueError, match="kmeans, gmm, agglomerative"):
        cluster_latents(z, 3, method="dbscan")
    with pytest.raises(ValueError, match="valid options"):
        cluster_latents(z, 3, preprocess="whiten")
    bad = z.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        cluster_latents(bad, 3)
    with pytest.raises(ValueError, match="2-D"):
        cluster_latents(z[:, 0], 3)
    with pytest.raises(RuntimeError, match="fit"):
        LatentClusterer(3).predict(z)


def test_gmm_falls_back_to_diag_when_full_fails(monkeypatch):
    import sklearn.mixture

    original_fit = sklearn.mixture.GaussianMixture.fit

    def fit(self, x, y=None):  # simulate an ill-defined full covariance
        if self.covariance_type == "full":
            raise ValueError("ill-defined empirical covariance")
        return original_fit(self, x)

    monkeypatch.setattr(sklearn.mixture.GaussianMixture, "fit", fit)
    z, y = blobs()
    with pytest.warns(UserWarning, match="falling back"):
        model = LatentClusterer(3, method="gmm").fit(z)
    assert model.model_.covariance_type == "diag"
    assert hungarian_accuracy(y, model.labels_) == 1.0


def test_threads_do_not_change_the_result():
    z, y = blobs()
    np.testing.assert_array_equal(cluster_latents(z, 3, n_threads=None), cluster_latents(z, 3, n_threads=1))


# --------------------------------------------------------------------------------------------
# scikit-learn estimator API
# --------------------------------------------------------------------------------------------
def test_clone_gives_an_unfitted_copy_with_the_same_parameters():
    model = LatentClusterer(3, method="gmm", preprocess="l2", seed=4)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    z, _ = blobs()
    model.fit(z)
    assert not hasattr(clone(model), "labels_")


def test_get_and_set_params():
    model = LatentClusterer(2)
    params = model.get_params()
    assert params["k"] == 2 and params["method"] == "kmeans" and params["n_threads"] == 1
    assert model.set_params(k=3, preprocess="standardize") is model
    z, y = blobs()
    assert hungarian_accuracy(y, model.fit(z).labels_) == 1.0


def test_invalid_parameters_are_reported_by_fit_not_init():
    model = LatentClusterer(3, method="dbscan")  # sklearn convention: __init__ only stores
    with pytest.raises(ValueError, match="kmeans, gmm, agglomerative, spectral, scan"):
        model.fit(blobs()[0])


def test_works_as_the_last_step_of_a_pipeline():
    z, y = blobs()
    pipe = make_pipeline(StandardScaler(), LatentClusterer(3))
    labels = pipe.fit_predict(z)
    assert hungarian_accuracy(y, labels) == 1.0
    np.testing.assert_array_equal(pipe.fit(z).predict(z), labels)
    np.testing.assert_array_equal(pipe.fit(z, y).named_steps["latentclusterer"].labels_, labels)  # y is ignored
