"""Tests for cae_lib.plots: every function returns a Figure, draws into a given axis, shows nothing."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.container import ErrorbarContainer  # noqa: E402

from cae_lib import plots  # noqa: E402
from cae_lib.cluster import choose_k_curves, majority_vote_curve, subgroup_report  # noqa: E402

RNG = np.random.default_rng(0)


@pytest.fixture(autouse=True)
def close_all_figures():
    """Every test leaves no figure open (figures left open make memory grow)."""
    plt.close("all")  # figures left by other test files are not this test's doing
    yield
    assert plt.get_fignums() == [], "a test left a figure open"


def check(fig, n_axes: int | None = None) -> None:
    """The result is a Figure with the expected number of axes; then close it."""
    assert isinstance(fig, Figure)
    if n_axes is not None:
        assert len(fig.axes) == n_axes
    plt.close(fig)


def images(kind: str, n: int = 12) -> object:
    """A batch of 8x8 images in each accepted format."""
    if kind == "uint8_gray":
        return RNG.integers(0, 256, (n, 8, 8), dtype=np.uint8)
    if kind == "uint8_rgb":
        return RNG.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8)
    if kind == "float_gray":
        return RNG.random((n, 1, 8, 8)).astype(np.float32)
    if kind == "torch_rgb":
        return torch.rand(n, 3, 8, 8)
    raise ValueError(kind)


KINDS = ["uint8_gray", "uint8_rgb", "float_gray", "torch_rgb"]


@pytest.mark.parametrize("kind", KINDS)
def test_to_display_formats(kind):
    x = plots.to_display(images(kind))
    assert x.shape == ((12, 8, 8, 3) if "rgb" in kind else (12, 8, 8))
    assert x.min() >= 0 and x.max() <= 1


@pytest.mark.parametrize("kind", KINDS)
def test_image_grid(kind):
    check(plots.image_grid(images(kind), nrow=5, titles=[str(i) for i in range(12)]), 1)
    fig, ax = plt.subplots()
    assert plots.image_grid(images(kind), ax=ax) is fig
    assert len(ax.images) == 1
    check(fig, 1)


@pytest.mark.parametrize("kind", ["uint8_gray", "torch_rgb"])
def test_class_montage(kind):
    labels = np.arange(12) % 3
    check(plots.class_montage(images(kind), labels, ["a", "b", "c"], per_class=3), 1)
    fig, (ax0, ax1) = plt.subplots(1, 2)
    # (N, 1) labels, and fewer than 10 examples per class
    assert plots.class_montage(images(kind), labels[:, None], per_class=10, ax=ax1) is fig
    assert [t.get_text() for t in ax1.get_yticklabels()] == ["0", "1", "2"]
    check(fig, 2)


@pytest.mark.parametrize("kind", ["float_gray", "uint8_rgb"])
def test_reconstructions(kind):
    x = images(kind)
    check(plots.reconstructions(x, x, n=6), 1)
    fig, ax = plt.subplots()
    assert plots.reconstructions(x, x, ax=ax) is fig
    check(fig, 1)
    with pytest.raises(ValueError, match="same shape"):
        plots.reconstructions(x, x[:3], n=6)


def test_cluster_montages_from_subgroup_report():
    z = RNG.normal(size=(60, 4))
    y = RNG.integers(0, 2, 60)
    x = images("uint8_gray", n=60)
    report = subgroup_report(z, y, k=4, n_typical=5)
    check(plots.subgroup_montages(x, report, class_names=["normal", "pneumonia"]), 1)
    fig, ax = plt.subplots()
    ids, indices = [r["cluster"] for r in report], [r["typical_indices"] for r in report]
    out = plots.cluster_montages(x, ids, indices, ax=ax)
    assert out is fig
    check(fig, 1)


def test_class_balance():
    counts = {"train": np.array([1214, 3494]), "test": np.array([234, 390])}
    fig = plots.class_balance(counts, ["normal", "pneumonia"])
    texts = " ".join(t.get_text() for t in fig.axes[0].get_legend().get_texts())
    assert "floor 0.742" in texts and "floor 0.625" in texts  # each split's majority floor is stated
    check(fig, 1)
    fig, ax = plt.subplots()
    assert plots.class_balance(counts, None, ax=ax) is fig
    check(fig, 1)


HISTORY = [
    {"epoch": e, "loss": 3.0 / e, "recon": 1.0 / e, "contrastive": 2.0 / e, "kl": 0.1, "top1": 0.1 * e,
     "top5": 0.2 * e, "val_loss": 3.2 / e, "lr": 1e-3, "time": 1.5}
    for e in range(1, 5)
]


def test_training_curves_list_of_dicts():
    fig = plots.training_curves(HISTORY)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["loss", "recon", "contrastive", "kl", "positive-pair accuracy"]
    assert len(fig.axes[0].lines) == 2  # loss and val_loss share a panel
    check(fig, 5)


def test_training_curves_skips_missing_keys_and_accepts_axes():
    history = {"epoch": [1, 2, 3], "loss": [3.0, 2.0, 1.5], "recon": [1.0, 0.8, 0.7]}  # dict of lists
    check(plots.training_curves(history), 2)
    fig, axes = plt.subplots(1, 3)
    assert plots.training_curves(history, axes=axes) is fig
    check(fig, 3)
    ragged = [{"epoch": 1, "loss": 1.0}, {"epoch": 2, "loss": 0.5, "top1": 0.4}]  # a key appears late
    check(plots.training_curves(ragged), 2)


def test_project_2d_and_latent_map():
    z = RNG.normal(size=(300, 10))
    y = RNG.integers(0, 3, 300)
    z2d, idx = plots.project_2d(z, "pca", max_points=100)
    assert z2d.shape == (100, 2) and idx.shape == (100,) and np.all(np.diff(idx) > 0)
    z2d_t, idx_t = plots.project_2d(z[:60], "tsne")
    assert z2d_t.shape == (60, 2) and np.array_equal(idx_t, np.arange(60))
    with pytest.raises(ValueError, match="pca"):
        plots.project_2d(z, "umap")
    check(plots.latent_map(z2d, y[idx], "by label", class_names=["a", "b", "c"]), 1)
    check(plots.latent_map(z2d, z2d[:, 0], "continuous", categorical=False), 2)  # with a colour bar
    fig, ax = plt.subplots()
    assert plots.latent_map(z2d, y[idx], ax=ax) is fig
    check(fig, 1)


def test_confusion_matrix_plot_orders_columns_by_hungarian_mapping():
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([7, 7, 3, 3, 5, 5, 9])  # 4 clusters, 3 classes: cluster 9 stays unmatched
    fig = plots.confusion_matrix_plot(y_true, y_pred, ["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["c7→a", "c3→b", "c5→c", "c9"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "c"]
    check(fig, 1)
    fig, ax = plt.subplots()
    assert plots.confusion_matrix_plot(y_true, y_pred, ax=ax) is fig
    check(fig, 1)


def test_elbow_silhouette_and_pitfall():
    z = np.concatenate([RNG.normal(size=(40, 2)) + c for c in ([0, 0], [20, 0], [0, 20])])
    y = np.repeat([0, 1, 2], 40)
    check(plots.elbow_silhouette(choose_k_curves(z, range(2, 6))), 2)
    fig, axes = plt.subplots(2, 1)
    assert plots.elbow_silhouette(choose_k_curves(z, [2, 3]), axes=axes) is fig
    check(fig, 2)
    curve = majority_vote_curve(z, y, k_range=[2, 3, 6])
    check(plots.majority_vote_pitfall(curve), 1)
    fig, ax = plt.subplots()
    assert plots.majority_vote_pitfall(curve, ax=ax) is fig
    check(fig, 1)


def test_results_bar_chart():
    rows = [
        {"method": "AE+k-means", "hungarian_acc_mean": 0.80, "hungarian_acc_sd": 0.02},
        {"method": "CAE", "hungarian_acc_mean": 0.85, "hungarian_acc_sd": 0.01},
        {"method": "single run", "hungarian_acc": 0.7},
    ]
    fig = plots.results_bar_chart(rows, floor=0.625, references={"CAE": 0.86, "VaDE": 0.945})
    ax = fig.axes[0]
    ticks = [t.get_text() for t in ax.get_xticklabels()]
    assert ticks == ["AE+k-means", "CAE", "single run", "VaDE\n(published)"]  # CAE's reference sits on its bar
    assert any(line.get_linestyle() == "--" for line in ax.lines)  # the floor
    check(fig, 1)
    fig, ax = plt.subplots()
    assert plots.results_bar_chart(rows, ax=ax) is fig
    check(fig, 1)
    # Single runs have no spread: no error bars at all (not bars of zero length) and no "± sd" title.
    has_error_bars = lambda axes: any(isinstance(c, ErrorbarContainer) for c in axes.containers)  # noqa: E731
    assert has_error_bars(ax)
    single = plots.results_bar_chart([{"method": "a", "hungarian_acc": 0.7}, {"method": "b", "hungarian_acc": 0.8}])
    assert not has_error_bars(single.axes[0]) and "±" not in single.axes[0].get_title()
    check(single, 1)
    # The axis keeps the floor in view above low bars, and shows negative values (ARI can be below 0).
    low = plots.results_bar_chart([{"method": "a", "accuracy": 0.5}], metric="accuracy", floor=0.731)
    assert low.axes[0].get_ylim()[1] > 0.731
    check(low, 1)
    negative = plots.results_bar_chart([{"method": "a", "ari_mean": -0.05, "ari_sd": 0.01}, {"method": "b", "ari_mean": 0.3}], metric="ari")
    bottom, top = negative.axes[0].get_ylim()
    assert bottom < -0.06 and top > 0.3
    check(negative, 1)


def test_label_efficiency():
    curves = {"CAE probe": {0.01: (0.7, 0.05), 0.1: (0.8, 0.02), 1.0: (0.85, 0.01)},
              "supervised": {0.01: (0.6, 0.1), 1.0: (0.9, 0.01)}}
    fig = plots.label_efficiency(curves, floor=0.625)
    assert fig.axes[0].get_xscale() == "log"
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["1%", "10%", "100%"]
    check(fig, 1)
    fig, ax = plt.subplots()
    assert plots.label_efficiency(curves, ax=ax) is fig
    check(fig, 1)
    assert all(c.has_yerr for c in ax.containers)
    single = plots.label_efficiency({"one run": {0.01: (0.7, None), 1.0: (0.85, None)}})
    assert not single.axes[0].containers[0].has_yerr
    check(single, 1)


def test_nothing_is_shown(monkeypatch):
    """No function calls plt.show(): it would block a script and print a warning under Agg."""
    monkeypatch.setattr(plt, "show", lambda *a, **k: pytest.fail("plt.show() was called"))
    check(plots.image_grid(images("uint8_gray")))
    check(plots.training_curves(HISTORY))


def test_neighbours_and_centroids_titles_hold_the_edge_share_and_each_clusterings_accuracy():
    from cae_lib.cluster.scan import mine_neighbours

    x = np.array([[0.0, 0.0], [0.1, 0.0], [0.2, 0.0], [5.0, 5.0], [5.1, 5.0], [5.2, 5.0]])
    y = np.array([0, 0, 0, 1, 1, 1])
    fig = plots.neighbours_and_centroids(x, y, {"perfect": 1 - y, "one off": np.array([0, 0, 1, 1, 1, 1])},
                                         neighbours=mine_neighbours(x, 2), class_names=["a", "b"])
    titles = [ax.get_title() for ax in fig.axes]
    assert "100% of the kNN edges join one label" in titles[0]
    assert "Hungarian acc 1.000" in titles[1] and "Hungarian acc 0.833" in titles[2]
    plt.close(fig)
