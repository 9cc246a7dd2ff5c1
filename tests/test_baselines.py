"""Supervised baselines: the real ImageNet weight-loading path, honest labels, shapes, training, predict."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

from cae_lib.augment import ContrastiveAugment
from cae_lib.baselines import (
    LABEL_SAME_BACKBONE,
    LABEL_SCRATCH,
    LABEL_TRANSFER,
    ClassificationObjective,
    PretrainedWeightsUnavailable,
    PretrainedWeightsWarning,
    SameBackboneClassifier,
    SupervisedConfig,
    build_resnet18,
    classification_metrics,
    label_subset,
    predict,
    resnet18_weights_path,
    run_baseline,
    train_supervised,
)
from cae_lib.config import ModelConfig

WEIGHTS_FILE = "resnet18-f37072fd.pth"
TINY = ModelConfig(latent_dim=8, width=4)


@dataclass
class Split:
    """The duck-typed subset of cae_lib.data.ImageData that the baselines rely on."""

    images: np.ndarray
    labels: np.ndarray
    n_classes: int = 2
    n_channels: int = 1


def bright_dark(n: int, seed: int, channels: int = 1) -> Split:
    """An easy two-class problem: dark images (label 0) and bright ones (label 1), balanced."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    rng.shuffle(labels)
    shape = (n, 28, 28) + ((channels,) if channels > 1 else ())
    noise = rng.random(shape) * 80
    images = (noise + labels.reshape((n,) + (1,) * (len(shape) - 1)) * 150).astype(np.uint8)
    return Split(images, labels.astype(np.int64), 2, channels)


@pytest.fixture
def torch_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """An empty TORCH_HOME; torch.hub reads it at call time (unless set_dir was called, which we undo)."""
    home = tmp_path / "torch_home"
    monkeypatch.setenv("TORCH_HOME", str(home))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # a set_dir() elsewhere would override TORCH_HOME
    assert Path(torch.hub.get_dir()) == home / "hub"
    assert resnet18_weights_path() == home / "hub" / "checkpoints" / WEIGHTS_FILE
    return home


@pytest.fixture
def fake_imagenet_weights(torch_home: Path) -> dict[str, torch.Tensor]:
    """A random torchvision ResNet-18 state dict saved where torch.hub looks for the ImageNet one."""
    torch.manual_seed(123)
    state = torchvision.models.resnet18(weights=None).state_dict()
    path = torch_home / "hub" / "checkpoints" / WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return state


# ------------------------------------------------------------------------------------------------
# ImageNet weights: the real torchvision / torch.hub loading path, no network
# ------------------------------------------------------------------------------------------------
def test_imagenet_weights_load_from_the_hub_cache_grey(fake_imagenet_weights):
    saved = fake_imagenet_weights
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning when the weights are there
        model, label = build_resnet18(1, 2, weights="auto")
    assert label == LABEL_TRANSFER == model.label
    net = model.resnet
    assert net.conv1.weight.shape == (64, 1, 7, 7)
    torch.testing.assert_close(net.conv1.weight.data, saved["conv1.weight"].sum(dim=1, keepdim=True))
    assert net.conv1.stride == (1, 1) and net.conv1.padding == (3, 3)
    assert isinstance(net.maxpool, torch.nn.Identity)
    for key in ("layer1.0.conv1.weight", "layer1.1.bn2.running_var", "layer4.1.conv2.weight"):
        torch.testing.assert_close(net.state_dict()[key], saved[key])
    assert net.fc.out_features == 2 and net.fc.in_features == 512


def test_imagenet_weights_rgb_keep_conv1_exactly(fake_imagenet_weights):
    model, label = build_resnet18(3, 5, weights="imagenet")
    assert label == LABEL_TRANSFER
    torch.testing.assert_close(model.resnet.conv1.weight.data, fake_imagenet_weights["conv1.weight"])
    assert model(torch.rand(2, 3, 28, 28)).shape == (2, 5)


def test_grey_conv1_equals_grey_replicated_in_rgb(fake_imagenet_weights):
    """The documented equivalence: summed kernel on grey == original kernel on grey copied into R, G, B."""
    grey, _ = build_resnet18(1, 2)
    rgb, _ = build_resnet18(3, 2)
    rgb.mean.fill_(grey.mean.item())  # the grey model normalises every copy with the averaged stats
    rgb.std.fill_(grey.std.item())
    x = torch.rand(3, 1, 28, 28)
    a = grey.resnet.conv1((x - grey.mean) / grey.std)
    b = rgb.resnet.conv1((x.repeat(1, 3, 1, 1) - rgb.mean) / rgb.std)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_missing_weights_warn_with_the_cache_path_and_fall_back(torch_home):
    expected = torch_home / "hub" / "checkpoints" / WEIGHTS_FILE
    with pytest.warns(PretrainedWeightsWarning) as record:
        model, label = build_resnet18(1, 2, weights="auto", allow_download=False)
    message = str(record[0].message)
    assert str(expected) in message and "download.pytorch.org" in message and "FROM SCRATCH" in message
    assert label == LABEL_SCRATCH == model.label
    assert not expected.exists()  # nothing was downloaded


def test_allowed_download_is_bounded_by_a_timeout_and_falls_back(torch_home, monkeypatch):
    """No network here: torch.hub's downloader is replaced by one that times out like a dead server."""
    import socket

    seen = {}

    def dead_server(url, dst, *args, **kwargs):
        seen.update(url=url, timeout=socket.getdefaulttimeout())
        raise socket.timeout("timed out")

    monkeypatch.setattr(torch.hub, "download_url_to_file", dead_server)
    before = socket.getdefaulttimeout()
    with pytest.warns(PretrainedWeightsWarning, match="could not download"):
        _, label = build_resnet18(1, 2, allow_download=True, download_timeout=2.5)
    assert label == LABEL_SCRATCH
    assert seen == {"url": torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url, "timeout": 2.5}
    assert socket.getdefaulttimeout() == before  # restored
    with pytest.raises(PretrainedWeightsUnavailable, match="timed out"):
        build_resnet18(1, 2, weights="imagenet", allow_download=True, download_timeout=2.5)


def test_insisting_on_imagenet_weights_raises_a_clear_error(torch_home):
    with pytest.raises(PretrainedWeightsUnavailable, match=WEIGHTS_FILE) as info:
        build_resnet18(1, 2, weights="imagenet")
    assert isinstance(info.value, RuntimeError) and "TORCH_HOME" in str(info.value)


def test_corrupted_cache_file_falls_back_with_advice(torch_home):
    path = torch_home / "hub" / "checkpoints" / WEIGHTS_FILE
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half a file")
    with pytest.warns(PretrainedWeightsWarning, match="delete"):
        _, label = build_resnet18(1, 2)
    assert label == LABEL_SCRATCH
    with pytest.raises(PretrainedWeightsUnavailable):
        build_resnet18(1, 2, weights="imagenet")


def test_weights_none_is_silent_and_bad_arguments_are_rejected(torch_home):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _, label = build_resnet18(1, 2, weights=None)
    assert label == LABEL_SCRATCH
    with pytest.raises(ValueError, match="imagenet"):
        build_resnet18(1, 2, weights="imagenet21k")
    with pytest.raises(ValueError, match="n_channels"):
        build_resnet18(2, 2, weights=None)


# ------------------------------------------------------------------------------------------------
# Shapes
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("channels", [1, 3])
def test_resnet18_output_shape_at_28_px(channels):
    model, _ = build_resnet18(channels, 4, weights=None)
    model.eval()
    with torch.no_grad():
        assert model(torch.rand(3, channels, 28, 28)).shape == (3, 4)


@pytest.mark.parametrize("channels,k", [(1, 2), (3, 7)])
def test_same_backbone_shapes(channels, k):
    clf = SameBackboneClassifier(ModelConfig(in_channels=channels, latent_dim=8, width=4), k)
    assert clf(torch.rand(5, channels, 28, 28)).shape == (5, k)
    assert clf.label == LABEL_SAME_BACKBONE
    vae = SameBackboneClassifier(ModelConfig(latent_dim=8, width=4, variant="vae"), k)
    assert vae(torch.rand(2, 1, 28, 28)).shape == (2, k)


# ------------------------------------------------------------------------------------------------
# Objective, metrics, training
# ------------------------------------------------------------------------------------------------
def test_objective_augments_only_in_training_mode():
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x):
            seen.append(x.clone())
            return torch.zeros(len(x), 2, requires_grad=True)

    x, y = torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 0, 1])
    obj = ClassificationObjective(ContrastiveAugment())
    model = Spy()
    loss, logs = obj(model.train(), (x, y), torch.Generator().manual_seed(0))
    assert not torch.equal(seen[-1], x)
    assert set(logs) == {"loss", "acc"} and logs["loss"] == pytest.approx(np.log(2), abs=1e-6)
    obj(model.eval(), (x, y), torch.Generator().manual_seed(0))
    assert torch.equal(seen[-1], x)


def test_classification_metrics_binary_and_multiclass():
    y = np.array([0, 0, 1, 1])
    m = classification_metrics(y, np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]]))
    assert m["accuracy"] == 0.75 and m["balanced_accuracy"] == 0.75 and m["auc"] == 1.0
    p3 = np.eye(3)[[0, 1, 2, 2]] * 0.7 + 0.1
    assert classification_metrics(np.array([0, 1, 2, 2]), p3)["auc"] == pytest.approx(1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn: "y_pred contains classes not in y_true"
        assert classification_metrics(np.array([0, 0, 0]), np.eye(3)[[0, 0, 1]])["auc"] is None


def test_label_subset_is_stratified_and_seeded():
    labels = np.array([0] * 80 + [1] * 20)
    idx = label_subset(labels, 0.1, seed=0)
    assert np.bincount(labels[idx]).tolist() == [8, 2]
    assert np.array_equal(idx, label_subset(labels, 0.1, seed=0))


def test_train_supervised_learns_an_easy_problem_and_reports_everything():
    train, val, test = bright_dark(64, 0), bright_dark(32, 1), bright_dark(32, 2)
    torch.manual_seed(0)
    model = SameBackboneClassifier(TINY, 2)
    cfg = SupervisedConfig(epochs=2, batch_size=16, lr=1e-2, device="cpu", seed=0)
    res = train_supervised(model, train, val, test, cfg, progress=False)
    for key in ("accuracy", "balanced_accuracy", "auc", "n_test", "n_train_labels", "train_seconds",
                "peak_memory_mb", "best_epoch", "label", "majority_floor", "val_accuracy", "history"):
        assert key in res, key
    assert res["accuracy"] > 0.9 and res["balanced_accuracy"] > 0.9 and res["auc"] > 0.9
    assert res["n_test"] == 32 and res["n_train_labels"] == 64 and res["n_extra_train"] == 0
    assert res["best_epoch"] in (1, 2) and res["label"] == LABEL_SAME_BACKBONE
    assert res["val_accuracy"] == max(h["val_acc"] for h in res["history"])
    assert res["peak_memory_mb"] > 0 and res["train_seconds"] > 0 and not model.training


def test_best_epoch_weights_are_restored():
    train, val, test = bright_dark(32, 0), bright_dark(16, 1), bright_dark(16, 2)
    torch.manual_seed(0)
    model = SameBackboneClassifier(TINY, 2)
    res = train_supervised(model, train, val, test, SupervisedConfig(epochs=2, batch_size=16, device="cpu"), progress=False)
    _, p = predict(model, val)
    assert np.mean(p.argmax(1) == val.labels) == res["val_accuracy"]


def test_label_indices_and_extra_train_are_respected():
    train, val, test = bright_dark(64, 0), bright_dark(16, 1), bright_dark(16, 2)
    extra = bright_dark(12, 3)
    cfg = SupervisedConfig(epochs=1, batch_size=16, device="cpu", augment_strength=0)
    res = train_supervised(SameBackboneClassifier(TINY, 2), train, val, test, cfg,
                           label_indices=np.arange(20), extra_train=(extra.images, extra.labels), progress=False)
    assert res["n_train_labels"] == 20 and res["n_extra_train"] == 12
    res = train_supervised(SameBackboneClassifier(TINY, 2), train, None, test,
                           SupervisedConfig(epochs=1, batch_size=16, device="cpu", label_fraction=0.25), progress=False)
    assert res["n_train_labels"] == 16 and res["best_epoch"] == 1 and res["val_accuracy"] is None
    with pytest.raises(ValueError, match="uint8"):
        train_supervised(SameBackboneClassifier(TINY, 2), train, val, test, cfg,
                         extra_train=(extra.images.astype(np.float32), extra.labels), progress=False)
    with pytest.raises(ValueError, match="label_indices"):
        train_supervised(SameBackboneClassifier(TINY, 2), train, val, test, cfg, label_indices=[64], progress=False)


def test_predict_uses_eval_mode_and_restores_training_mode():
    class ModeSpy(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(28 * 28, 3)
            self.modes, self.grads = [], []

        def forward(self, x):
            self.modes.append(self.training)
            self.grads.append(torch.is_grad_enabled())
            return self.lin(x.flatten(1))

    model = ModeSpy().train()
    pred, probs = predict(model, bright_dark(10, 0), batch_size=4)
    assert model.modes == [False] * 3 and model.grads == [False] * 3 and model.training
    assert pred.shape == (10,) and probs.shape == (10, 3)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-5)
    assert np.array_equal(pred, probs.argmax(1))
    model.eval()
    predict(model, bright_dark(4, 0))
    assert not model.training


def test_run_baseline_builds_either_model_with_an_honest_method(torch_home):
    train, val, test = bright_dark(16, 0, channels=3), bright_dark(8, 1, channels=3), bright_dark(8, 2, channels=3)
    for split in (train, val, test):
        split.n_channels = 3
    cfg = SupervisedConfig(epochs=1, batch_size=8, device="cpu")
    res = run_baseline("same_backbone", train, val, test, cfg, model_cfg=ModelConfig(in_channels=3, latent_dim=8, width=4), progress=False)
    assert res["method"] == LABEL_SAME_BACKBONE and res["kind"] == "same_backbone"
    with pytest.warns(PretrainedWeightsWarning):
        res = run_baseline("resnet18", train, val, test, cfg, progress=False)
    assert res["method"] == LABEL_SCRATCH and res["n_test"] == 8
    with pytest.raises(ValueError, match="in_channels"):
        run_baseline("same_backbone", train, val, test, cfg, model_cfg=TINY, progress=False)
    with pytest.raises(ValueError, match="resnet18"):
        run_baseline("vgg", train, val, test, cfg)


def test_supervised_config_presets_and_validation():
    assert SupervisedConfig.for_model("resnet18").lr == 1e-3
    assert SupervisedConfig.for_model("same_backbone", epochs=3).epochs == 3
    with pytest.raises(ValueError, match="label_fraction"):
        SupervisedConfig(label_fraction=0).validate()
