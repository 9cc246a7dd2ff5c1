"""The neighbour-based clusterers (issue 22): spectral clustering on the kNN graph, and SCAN.

Known answers: the SCAN loss on hand-worked cases and against a plain double loop; neighbours
mined by angle; two interleaved half-moons, which neighbours separate exactly and centroids cannot;
the kNN vote of ``predict``. The generic estimator contract (blobs recovered exactly, seeded
determinism, ``predict`` on new points) is checked for every method in ``test_cluster.py``.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.base import clone

from cae_lib.cluster import LatentClusterer
from cae_lib.cluster.scan import SCANClustering, mine_neighbours, scan_loss
from cae_lib.cluster.spectral import SpectralNeighbourClustering
from cae_lib.metrics import hungarian_accuracy


# ------------------------------------------------------------------------------------------------
# The SCAN loss
# ------------------------------------------------------------------------------------------------
def test_scan_loss_hand_worked_uniform_case():
    p = torch.full((2, 2), 0.5)
    total, consistency, entropy = scan_loss(p, p, entropy_weight=1.0)
    assert consistency.item() == pytest.approx(math.log(2)) and entropy.item() == pytest.approx(math.log(2))
    assert total.item() == pytest.approx(0.0, abs=1e-7)


def test_scan_loss_hand_worked_confident_case():
    anchors = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    neighbours = torch.tensor([[0.8, 0.2], [0.3, 0.7]])
    total, consistency, entropy = scan_loss(anchors, neighbours, entropy_weight=2.0)
    assert consistency.item() == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    assert entropy.item() == pytest.approx(math.log(2))  # the mean assignment is (0.5, 0.5)
    assert total.item() == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2 - 2 * math.log(2))


def test_scan_loss_equals_a_double_loop_in_value_and_gradient():
    gen = torch.Generator().manual_seed(0)
    logits_a = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    logits_n = torch.randn(6, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    total = scan_loss(logits_a.softmax(1), logits_n.softmax(1), entropy_weight=0.7)[0]

    a, n = logits_a.softmax(1), logits_n.softmax(1)
    consistency = sum(-torch.log(sum(a[i, c] * n[i, c] for c in range(3))) for i in range(6)) / 6
    mean = [sum(a[i, c] for i in range(6)) / 6 for c in range(3)]
    oracle = consistency + 0.7 * sum(m * torch.log(m) for m in mean)
    assert total.item() == pytest.approx(oracle.item(), abs=1e-12)
    grads = torch.autograd.grad(total, (logits_a, logits_n))
    oracle_grads = torch.autograd.grad(oracle, (logits_a, logits_n))
    for g, o in zip(grads, oracle_grads):
        torch.testing.assert_close(g, o)


def test_neighbours_are_mined_by_distance_or_angle_and_never_include_the_point_itself():
    angles = np.deg2rad([0, 10, 25, 90, 95])
    x = np.stack([np.cos(angles), np.sin(angles)], axis=1) * np.array([[1], [5], [0.1], [2], [3]])  # lengths do not matter
    np.testing.assert_array_equal(mine_neighbours(x, 2, metric="cosine"), [[1, 2], [0, 2], [1, 0], [4, 2], [3, 2]])
    line = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_array_equal(mine_neighbours(line, 2), [[1, 2], [0, 2], [1, 0], [2, 1]])
    duplicates = np.ones((4, 3))  # all at distance 0: self is still dropped
    assert all(i not in row for i, row in enumerate(mine_neighbours(duplicates, 3)))


# ------------------------------------------------------------------------------------------------
# Why neighbours: two long parallel strips are one connected region each, not a blob around a centre
# ------------------------------------------------------------------------------------------------
def strips(n_per: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two strips 10 long and 1 apart: k-means cuts across them (the shorter way round the centres)."""
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n_per)
    return np.stack([rng.uniform(0, 10, len(y)), y + rng.normal(0, 0.08, len(y))], axis=1), y


def test_spectral_clustering_and_scan_separate_the_strips_and_k_means_cannot():
    x, y = strips()
    new_x, new_y = strips(n_per=50, seed=1)
    assert hungarian_accuracy(y, LatentClusterer(2, "kmeans").fit_predict(x)) < 0.6
    for method in ("spectral", "scan"):
        model = LatentClusterer(2, method).fit(x)
        assert hungarian_accuracy(y, model.labels_) == 1.0, method
        assert hungarian_accuracy(new_y, model.predict(new_x)) == 1.0, method
    proba = SCANClustering(2).fit(x).predict_proba(new_x[:5])
    assert proba.shape == (5, 2) and np.allclose(proba.sum(axis=1), 1)


def test_spectral_predict_is_a_vote_of_the_nearest_training_codes_with_ties_to_the_nearest():
    x = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0]])
    model = SpectralNeighbourClustering(2, n_neighbors=2).fit(x)
    left, right = model.labels_[0], model.labels_[3]
    assert left != right
    np.testing.assert_array_equal(model.predict([[0.5], [11.5], [-3.0]]), [left, right, left])
    # 6.4: its two nearest are 2.0 (left) and 10.0 (right), a tie; 2.0 is nearer, so left wins
    assert model.predict([[5.9]])[0] == left and model.predict([[6.1]])[0] == right


def test_neighbour_clusterers_are_scikit_learn_estimators():
    for est in (SpectralNeighbourClustering(3, n_neighbors=7), SCANClustering(3, entropy_weight=2.0), LatentClusterer(3, "scan")):
        copy = clone(est)
        assert copy.get_params() == est.get_params() and copy is not est
    with pytest.raises(RuntimeError, match="fit"):
        SCANClustering(2).predict(np.zeros((1, 2)))
    with pytest.raises(RuntimeError, match="fit"):
        SpectralNeighbourClustering(2).predict(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="k >= 2"):
        SCANClustering(1).fit(np.zeros((10, 2)))


def test_scan_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    SCANClustering(2, epochs=1, self_label_epochs=0, n_init=1).fit(strips()[0])
    assert torch.equal(before, torch.get_rng_state())


def test_scan_trains_with_the_clusterers_thread_count_and_puts_torchs_back(monkeypatch):
    """LatentClusterer(n_threads=1) bounds SCAN's torch threads as it bounds k-means' BLAS threads; the
    caller's torch setting (here 2) is back afterwards, also when the fit fails."""
    seen: list[int] = []
    train_head = SCANClustering._train_head

    def spy(self, *args):
        seen.append(torch.get_num_threads())
        return train_head(self, *args)

    monkeypatch.setattr(SCANClustering, "_train_head", spy)
    previous = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        model = LatentClusterer(2, "scan", n_threads=1).set_params(n_neighbors=5)
        model.fit(strips()[0])
        assert seen == [1, 1, 1] and torch.get_num_threads() == 2  # n_init = 3 heads, each with one thread
        assert model.model_.n_threads == 1
        monkeypatch.setattr(SCANClustering, "_train_head", lambda *a: (_ for _ in ()).throw(RuntimeError("boom")))
        with pytest.raises(RuntimeError, match="boom"):
            SCANClustering(2, n_threads=1).fit(strips()[0])
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
