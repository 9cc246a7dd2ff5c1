"""Tests for cae_lib.metrics: Hungarian accuracy against a brute-force oracle, and friends."""

import itertools

import numpy as np
import pytest

from cae_lib.metrics import (
    clustering_metrics,
    contingency_matrix,
    hungarian_accuracy,
    hungarian_mapping,
    majority_class_floor,
    majority_vote_accuracy,
)


def brute_force_accuracy(y_true: np.ndarray, y_pred: np.ndarray, k: int, n_classes: int) -> float:
    """Oracle: try every one-to-one assignment of the n_classes labels to distinct clusters (k >= n_classes)."""
    best = 0
    for clusters in itertools.permutations(range(k), n_classes):  # clusters[c] is the cluster given label c
        correct = sum(np.sum((y_true == c) & (y_pred == clusters[c])) for c in range(n_classes))
        best = max(best, correct)
    return best / len(y_true)


@pytest.mark.parametrize("n_classes", [2, 3, 4, 5])
@pytest.mark.parametrize("extra_clusters", [0, 1, 2])
@pytest.mark.parametrize("seed", range(5))
def test_hungarian_matches_brute_force(n_classes, extra_clusters, seed):
    rng = np.random.default_rng(seed)
    k = n_classes + extra_clusters
    n = int(rng.integers(5, 40))
    y_true = rng.integers(0, n_classes, n)
    # a noisy clustering: right (under a random relabelling) some of the time, random otherwise
    relabel = rng.permutation(k)
    y_pred = np.where(rng.random(n) < 0.6, relabel[y_true], rng.integers(0, k, n))
    assert hungarian_accuracy(y_true, y_pred) == pytest.approx(brute_force_accuracy(y_true, y_pred, k, n_classes))


@pytest.mark.parametrize("n_classes", [2, 3, 5, 7])
def test_permuted_labels_score_exactly_one(n_classes):
    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 200)
    perm = rng.permutation(n_classes) + 10  # arbitrary cluster ids
    assert hungarian_accuracy(y, perm[y]) == 1.0
    assert majority_vote_accuracy(y, perm[y]) == 1.0
    mapping = hungarian_mapping(y, perm[y])
    assert mapping == {int(perm[c]): c for c in np.unique(y)}


def test_hand_computed_example():
    #   labels   0 0 0 1 1 2 2 2
    #   clusters 1 1 0 0 0 2 2 1
    # contingency (cluster x label): c0 = [1, 2, 0], c1 = [2, 0, 1], c2 = [0, 0, 2]
    # best one-to-one: c1->0 (2), c0->1 (2), c2->2 (2) = 6 of 8
    # majority vote:  c0->1 (2), c1->0 (2), c2->2 (2) = 6 of 8 as well
    y_true = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([1, 1, 0, 0, 0, 2, 2, 1])
    counts, clusters, labels = contingency_matrix(y_true, y_pred)
    np.testing.assert_array_equal(counts, [[1, 2, 0], [2, 0, 1], [0, 0, 2]])
    assert hungarian_accuracy(y_true, y_pred) == 6 / 8
    assert hungarian_mapping(y_true, y_pred) == {0: 1, 1: 0, 2: 2}
    assert majority_vote_accuracy(y_true, y_pred) == 6 / 8


def test_majority_vote_differs_from_hungarian_when_clusters_share_a_label():
    # two clusters are both mostly label 0: majority vote counts both, Hungarian only one
    y_true = np.array([0, 0, 0, 0, 1, 1])
    y_pred = np.array([0, 0, 1, 1, 2, 2])  # three clusters, two labels: c0 and c1 are both label 0
    assert majority_vote_accuracy(y_true, y_pred) == 1.0
    assert hungarian_accuracy(y_true, y_pred) == 4 / 6  # one of the label-0 clusters is unmatched


def test_rectangular_fewer_clusters_than_classes():
    y_true = np.array([0, 0, 1, 1, 2, 2])
    y_pred = np.zeros(6, dtype=int)
    assert hungarian_accuracy(y_true, y_pred) == 2 / 6
    assert len(hungarian_mapping(y_true, y_pred)) == 1


def test_majority_vote_is_one_when_every_point_is_its_own_cluster():
    """The K pitfall: with K = N clusters majority vote is perfect on any labels."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 100)
    singletons = np.arange(100)
    assert majority_vote_accuracy(y, singletons) == 1.0
    assert hungarian_accuracy(y, singletons) == 3 / 100


def test_majority_class_floor_known_counts():
    assert majority_class_floor(np.array([0] * 74 + [1] * 26)) == 0.74
    assert majority_class_floor(np.array([2, 2, 1, 0])) == 0.5
    assert majority_class_floor(np.array([[1], [1], [0]])) == pytest.approx(2 / 3)  # MedMNIST (N, 1)
    with pytest.raises(ValueError):
        majority_class_floor(np.array([]))


def test_clustering_metrics_identical_partitions():
    y = np.repeat(np.arange(4), 25)
    m = clustering_metrics(y, (y + 1) % 4)
    assert m["nmi"] == pytest.approx(1.0)
    assert m["ari"] == pytest.approx(1.0)
    assert m["hungarian_acc"] == 1.0
    assert m["majority_vote_acc"] == 1.0
    assert m["n_clusters"] == 4
    assert m["floor"] == 0.25
    assert "silhouette" not in m


def test_clustering_metrics_with_silhouette():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 50)
    z = rng.normal(size=(100, 2)) + 10 * y[:, None]
    m = clustering_metrics(y, y, z=z)
    assert 0.8 < m["silhouette"] <= 1.0
    assert np.isnan(clustering_metrics(y, np.zeros(100, int), z=z)["silhouette"])  # one cluster: undefined


def test_label_shape_errors():
    with pytest.raises(ValueError, match="entries"):
        hungarian_accuracy([0, 1, 1], [0, 1])
    with pytest.raises(ValueError, match="empty"):
        hungarian_accuracy([], [])
