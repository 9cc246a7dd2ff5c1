"""Tests for cae_lib.probes: kNN and linear probes, stratified label subsets."""

import numpy as np
import pytest

from cae_lib.probes import knn_accuracy, label_subset, linear_probe


def separable(n: int = 300, n_classes: int = 3, dim: int = 8, seed: int = 0):
    """Train and test splits of well-separated Gaussian classes (centres 10 apart, unit noise)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_classes, dim)) * 10

    def split(m):
        y = rng.integers(0, n_classes, m)
        return centres[y] + rng.normal(size=(m, dim)), y

    return (*split(n), *split(n // 2))


@pytest.mark.parametrize("n_classes", [2, 3, 5])
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_on_separable_data(n_classes, metric):
    z_tr, y_tr, z_te, y_te = separable(n_classes=n_classes, seed=n_classes)
    assert knn_accuracy(z_tr, y_tr, z_te, y_te, k=10, metric=metric) >= 0.97


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_linear_probe_on_separable_data(n_classes):
    z_tr, y_tr, z_te, y_te = separable(n_classes=n_classes, seed=n_classes)
    out = linear_probe(z_tr, y_tr, z_te, y_te)
    assert out["accuracy"] >= 0.97
    assert out["balanced_acc"] >= 0.97
    assert out["n_classes"] == n_classes
    assert len(out["model"].classes_) == n_classes  # exactly one output per class
    assert out["model"].predict_proba(z_te).shape == (len(z_te), n_classes)
    coef = out["model"][-1].coef_
    assert coef.shape == ((1 if n_classes == 2 else n_classes), z_tr.shape[1])  # binary: one logit row
    if n_classes == 2:
        assert out["auc"] >= 0.99
    else:
        assert out["auc"] is None


@pytest.mark.parametrize("standardize", [True, False])
def test_probes_near_chance_on_random_labels(standardize):
    rng = np.random.default_rng(0)
    z_tr, z_te = rng.normal(size=(600, 8)), rng.normal(size=(600, 8))
    y_tr, y_te = rng.integers(0, 4, 600), rng.integers(0, 4, 600)  # labels carry no information
    assert abs(knn_accuracy(z_tr, y_tr, z_te, y_te) - 0.25) < 0.07
    out = linear_probe(z_tr, y_tr, z_te, y_te, standardize=standardize)
    assert abs(out["accuracy"] - 0.25) < 0.07


def test_probe_is_seeded_and_accepts_column_labels():
    z_tr, y_tr, z_te, y_te = separable(n_classes=2, seed=7)
    a = linear_probe(z_tr, y_tr[:, None], z_te, y_te[:, None], seed=1)  # MedMNIST-style (N, 1)
    b = linear_probe(z_tr, y_tr, z_te, y_te, seed=1)
    assert a["accuracy"] == b["accuracy"]


def test_probe_errors():
    z_tr, y_tr, z_te, y_te = separable()
    with pytest.raises(ValueError, match="single class"):
        linear_probe(z_tr, np.zeros_like(y_tr), z_te, y_te)
    with pytest.raises(ValueError, match="k must be"):
        knn_accuracy(z_tr, y_tr, z_te, y_te, k=len(z_tr) + 1)
    with pytest.raises(ValueError, match="metric"):
        knn_accuracy(z_tr, y_tr, z_te, y_te, metric="manhattan")
    with pytest.raises(ValueError, match="shape"):
        knn_accuracy(z_tr, y_tr[:-1], z_te, y_te)


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 1.0])
def test_label_subset_fractions_are_stratified(fraction):
    y = np.repeat([0, 1, 2], [700, 250, 50])  # imbalanced
    idx = label_subset(y, fraction, seed=0)
    assert len(np.unique(idx)) == len(idx) and np.all(np.diff(idx) > 0)  # sorted, no repeats
    counts = np.bincount(y[idx], minlength=3)
    expected = np.maximum(1, np.round(fraction * np.array([700, 250, 50])))
    np.testing.assert_array_equal(counts, expected)  # every class kept, each at its own fraction
    assert abs(len(idx) - fraction * len(y)) <= 3


def test_label_subset_seeded_and_keeps_rare_classes():
    y = np.array([0] * 99 + [1])
    idx = label_subset(y, 0.01, seed=3)
    assert set(y[idx]) == {0, 1}
    np.testing.assert_array_equal(idx, label_subset(y, 0.01, seed=3))
    zeros = np.zeros(1000, int)
    assert not np.array_equal(label_subset(zeros, 0.1, seed=0), label_subset(zeros, 0.1, seed=1))
    with pytest.raises(ValueError, match="fraction"):
        label_subset(y, 0.0)
