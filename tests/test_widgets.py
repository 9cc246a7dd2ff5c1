"""Tests for cae_lib.widgets: every render function and every explorer, without a browser.

Tiny synthetic images and a tiny untrained model (latent_dim=4, width=4) keep this fast; the
point is that each callback returns a Figure (and metrics where it should), for grey and RGB.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cae_lib import widgets as W  # noqa: E402
from cae_lib.config import AugmentConfig, ModelConfig  # noqa: E402
from cae_lib.data import ImageData  # noqa: E402
from cae_lib.embed import embed  # noqa: E402
from cae_lib.models import ContrastiveAutoencoder  # noqa: E402
from cae_lib.sampling import ClassGMMSampler, GaussianSampler, LatentTraversal  # noqa: E402

N = 40


@pytest.fixture(autouse=True)
def close_all_figures():
    """Every test leaves no figure open: explorers close theirs, the tests close what they get."""
    plt.close("all")  # figures left by other test files are not this test's doing
    yield
    assert plt.get_fignums() == [], "a test left a figure open"


@pytest.fixture(params=[1, 3], ids=["grey", "rgb"])
def setup(request):
    """(images ImageData, untrained tiny model, its codes) for 1 or 3 channels."""
    channels = request.param
    rng = np.random.default_rng(0)
    shape = (N, 28, 28) if channels == 1 else (N, 28, 28, 3)
    data = ImageData(images=rng.integers(0, 256, shape, dtype=np.uint8), labels=np.arange(N) % 2,
                     name="tiny", split="test", class_names=("neg", "pos"))
    torch.manual_seed(0)
    model = ContrastiveAutoencoder(ModelConfig(in_channels=channels, latent_dim=4, width=4)).eval()
    return data, model, embed(model, data)


def figure(result) -> Figure:
    assert isinstance(result, Figure)
    plt.close(result)
    return result


def explorer_ok(explorer: W.Explorer) -> None:
    """Built, rendered once, figure closed; shows the placeholder text when saved."""
    assert isinstance(explorer, W.Explorer)
    assert isinstance(explorer.figure, Figure)
    assert repr(explorer) == W.EXPLORER_TEXT
    assert not plt.fignum_exists(explorer.figure.number)


# ---- 1. contrastive views ------------------------------------------------------------------
def test_render_views(setup):
    data, _, _ = setup
    figure(W.render_views(data, strength=1.5, seed=0, n_images=3, n_views=2))
    figure(W.render_views(data.images, strength=0.0, seed=1))  # a raw uint8 array works too
    figure(W.render_views(data.to_tensor(np.arange(4)), strength=2.0, config=AugmentConfig(hflip=True)))


def test_render_views_is_seeded(setup):
    data, _, _ = setup
    a, b = W.render_views(data, 1.0, seed=3), W.render_views(data, 1.0, seed=3)
    for fig in (a, b):
        fig.canvas.draw()
    same = np.array_equal(np.asarray(a.canvas.buffer_rgba()), np.asarray(b.canvas.buffer_rgba()))
    plt.close(a), plt.close(b)
    assert same


def test_augmentation_explorer_reacts_to_its_controls(setup):
    data, _, _ = setup
    ex = W.augmentation_explorer(data, n_images=2, n_views=2)
    explorer_ok(ex)
    first = ex.figure
    ex.controls["strength"].value = 0.5  # observe -> refresh
    assert ex.figure is not first
    explorer_ok(ex)


# ---- 2. latent maps ------------------------------------------------------------------------
@pytest.mark.parametrize("projection", ["pca", "tsne"])
@pytest.mark.parametrize("color_by", ["label", "cluster"])
def test_render_latent_map(setup, projection, color_by):
    data, _, z = setup
    fig = figure(W.render_latent_map({"A": z, "B": z * 2}, data.labels, projection, color_by,
                                     class_names=data.class_names, max_points=30))
    assert len([ax for ax in fig.axes if ax.collections]) == 2  # one scatter panel per model


def test_render_latent_map_options(setup):
    data, _, z = setup
    cache: dict = {}
    figure(W.render_latent_map({"A": z, "B": z}, data.labels, models=["B"], cache=cache, color_by="cluster", k=3))
    assert cache, "projections and clusterings are cached"
    figure(W.render_latent_map(z, data.labels))  # a single array
    with pytest.raises(ValueError, match="unknown models"):
        W.render_latent_map({"A": z}, data.labels, models=["C"])
    with pytest.raises(ValueError, match="color_by"):
        W.render_latent_map({"A": z}, data.labels, color_by="size")


def test_latent_map_explorer(setup):
    data, _, z = setup
    ex = W.latent_map_explorer({"A": z, "B": -z}, data.labels, data.class_names, max_points=30)
    explorer_ok(ex)
    ex.controls["model"].value = "B"
    ex.controls["color_by"].value = "cluster"
    explorer_ok(ex)


# ---- 3. clustering -------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["kmeans", "gmm", "agglomerative"])
def test_render_clustering_returns_figure_and_metrics(setup, method):
    data, _, z = setup
    fig, m = W.render_clustering(z, data.labels, 3, method, images=data, class_names=data.class_names)
    figure(fig)
    for key in ("hungarian_acc", "nmi", "ari", "majority_vote_acc", "floor", "silhouette"):
        assert key in m
    assert m["k"] == 3 and m["method"] == method
    assert 0 <= m["hungarian_acc"] <= 1 and m["floor"] == 0.5
    assert m["majority_vote_acc"] >= m["hungarian_acc"]  # many-to-one can only do better


def test_render_clustering_fit_on_other_codes(setup):
    data, _, z = setup
    fig, m = W.render_clustering(z[:20], data.labels[:20], 2, "kmeans", preprocess="l2", z_fit=z[20:])
    figure(fig)
    assert m["preprocess"] == "l2"
    table = W.clustering_table({"k-means": m, "again": m})
    assert "Hungarian" in table and "(K = 2)" in table and table.count("\n") == 3


def test_cluster_explorer_runs_on_button(setup):
    data, _, z = setup
    ex = W.cluster_explorer(z, data.labels, images=data, class_names=data.class_names, k_max=5)
    explorer_ok(ex)
    assert ex.result[1]["k"] == 2  # starts at k = number of classes
    ex.controls["k"].value = 4  # manual: nothing happens until Run
    assert ex.result[1]["k"] == 2
    ex.button.click()
    assert ex.result[1]["k"] == 4
    explorer_ok(ex)


# ---- 4. decoding ---------------------------------------------------------------------------
@pytest.mark.parametrize("basis", ["pca", "raw"])
def test_render_traversal(setup, basis):
    data, model, z = setup
    trav = LatentTraversal().fit(z)
    figure(W.render_traversal(model, trav, direction=1, n_directions=3, max_sd=1.5, steps=5, basis=basis))
    figure(W.render_traversal(model, trav, direction=3, n_directions=4, start=data.images[0]))  # clipped to L


def test_traversal_explorer(setup):
    data, model, z = setup
    trav = LatentTraversal().fit(z)
    explorer_ok(W.traversal_explorer(model, trav))
    ex = W.traversal_explorer(model, trav, images=data)
    ex.controls["start"].value = 2
    ex.controls["basis"].value = "raw"
    explorer_ok(ex)


@pytest.mark.parametrize("slerp", [False, True])
def test_render_interpolation(setup, slerp):
    data, model, _ = setup
    figure(W.render_interpolation(model, data, 0, 5, steps=4, slerp=slerp, class_names=data.class_names))
    figure(W.render_interpolation(model, data.images, 1, 2))
    with pytest.raises(ValueError, match="out of range"):
        W.render_interpolation(model, data, 0, N)


def test_interpolation_explorer_shows_errors_instead_of_raising(setup):
    data, model, _ = setup
    ex = W.interpolation_explorer(model, data, data.labels, data.class_names)
    explorer_ok(ex)
    ex.controls["steps"].value = 5
    explorer_ok(ex)
    def broken(**_):
        plt.figure()  # half-drawn when the error comes
        raise ValueError("boom")

    ex._render = broken  # a later failure is shown in the output area, and its figure closed
    assert ex.refresh() is None
    assert [(o["output_type"], o.get("name"), o.get("text")) for o in ex.output.outputs] == [("stream", "stderr", "ValueError: boom\n")]
    with pytest.raises(ValueError, match="boom"):
        ex.refresh(raise_errors=True)


def test_explorer_sets_its_output_area_without_capturing(setup, monkeypatch):
    """The figure and the table go into the Output widget's ``outputs`` in one assignment; the
    explorer never enters ``with output:``, whose captured messages make nbclient (papermill) write to
    the kernel while it waits for the cell's reply, which can leave it waiting forever."""
    import ipywidgets

    entered = []
    monkeypatch.setattr(ipywidgets.Output, "__enter__", lambda self: entered.append(self))
    data, _, z = setup
    ex = W.cluster_explorer(z, data.labels, images=data, class_names=data.class_names, k_max=5)
    ex.button.click()
    assert entered == [] and ex.output.msg_id == ""
    figure_out, table_out = ex.output.outputs
    assert figure_out["output_type"] == "display_data" and figure_out["data"]["text/plain"].startswith("<Figure")
    assert "Hungarian" in table_out["data"]["text/markdown"]  # show_extra: the metrics table


def test_render_class_samples(setup):
    data, model, z = setup
    sampler = ClassGMMSampler(covariance_type="diag").fit(z, data.labels)
    figure(W.render_class_samples(model, sampler, label=1, scale=0.5, seed=0, n=6, class_names=data.class_names))
    figure(W.render_class_samples(model, sampler, label=-1, n=4))  # any class
    figure(W.render_class_samples(model, sampler, label=None, scale=0.0, n=4))


def test_class_sampling_explorer(setup):
    data, model, z = setup
    sampler = ClassGMMSampler(covariance_type="diag").fit(z, data.labels)
    ex = W.class_sampling_explorer(model, sampler, data.class_names, n=4)
    explorer_ok(ex)
    ex.controls["label"].value = -1
    ex.controls["scale"].value = 2.0
    explorer_ok(ex)


def test_render_samplers(setup):
    data, model, z = setup
    samplers = {"class GMM": ClassGMMSampler(covariance_type="diag").fit(z, data.labels),
                "Gaussian": GaussianSampler().fit(z), "Gaussian, labelled": GaussianSampler().fit(z, data.labels)}
    figure(W.render_samplers(model, samplers, n=3, class_names=data.class_names))


def test_model_mode_restored_and_no_gradients(setup):
    data, model, z = setup
    model.train()
    figure(W.render_interpolation(model, data, 0, 1, steps=3))
    figure(W.render_traversal(model, LatentTraversal().fit(z)))
    assert model.training, "the render functions restore the model's mode"
    assert all(p.grad is None for p in model.parameters())


def test_neighbours_figure_fits_each_method_on_the_fit_codes_and_scores_the_others():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 400)
    strips = np.stack([rng.uniform(0, 10, 800), y + rng.normal(0, 0.08, 800)], axis=1)  # k-means cuts across them
    fig = W.neighbours_figure(strips[::2], y[::2], strips[1::2], methods=("kmeans", "spectral"))
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[1].startswith("k-means") and titles[2].startswith("spectral (kNN graph)\nHungarian acc 1.000")
    assert float(titles[1].split("acc ")[1]) < 0.7 and "of the kNN edges join one label" in titles[0]
    plt.close(fig)
