"""Supervised baselines: what the unsupervised CAE is compared with.

Ferrante et al. (2023) set their clustering results beside a *supervised* model trained with the
labels the CAE never sees. This module provides two such references:

1. **Transfer learning** (:func:`build_resnet18`): a torchvision ResNet-18 with ImageNet weights,
   adapted to 28 px and to 1 or 3 channels, fine-tuned with every label. This is the MedMNIST v2
   benchmark model (test accuracy 0.854 on PneumoniaMNIST after 100 epochs; see the guide).
2. **Same backbone** (:class:`SameBackboneClassifier`): the CAE encoder itself followed by a linear
   layer, trained with labels. Same architecture, same capacity, same input: *the fair ceiling for
   the architecture*. The gap between it and the clustering is the price of having no labels.

Both train with the model-agnostic :class:`~cae_lib.trainer.Trainer` and the
:class:`ClassificationObjective` (cross-entropy, with one mildly augmented view per image), and
:func:`train_supervised` keeps the epoch with the best validation accuracy and scores it once on
the official *test* split.

Honest labels. Without network access the ImageNet weights cannot be fetched, and a "transfer"
number that was really trained from scratch would mislead. :func:`build_resnet18` therefore
returns the label that says what happened, ``"ResNet-18 (ImageNet transfer)"`` or
``"ResNet-18 (from scratch)"``, and :func:`run_baseline` puts it in the result under ``"method"``.

Offline use: put the file ``resnet18-f37072fd.pth`` (from
https://download.pytorch.org/models/resnet18-f37072fd.pth) in
``$TORCH_HOME/hub/checkpoints/`` (by default ``~/.cache/torch/hub/checkpoints/``);
:func:`resnet18_weights_path` prints the exact path on your machine.

Example (expected runtime: see :class:`SupervisedConfig`)::

    from cae_lib.data import load_dataset
    train, val, test = (load_dataset("pneumoniamnist", s) for s in ("train", "val", "test"))
    res = run_baseline("same_backbone", train, val, test)   # ~15 s on 2 idle CPU cores
    print(res["method"], res["accuracy"], res["balanced_accuracy"], res["auc"])
"""

from __future__ import annotations

import copy
import dataclasses
import socket
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence
from urllib.parse import urlparse

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from cae_lib.augment import ContrastiveAugment
from cae_lib.config import AugmentConfig, ModelConfig, TrainConfig
from cae_lib.models import Encoder, count_parameters
from cae_lib.probes import label_subset  # the one stratified subset used everywhere
from cae_lib.trainer import ImageBatches, Trainer
from cae_lib.utils import peak_memory_mb, seed_everything

LABEL_TRANSFER = "ResNet-18 (ImageNet transfer)"
LABEL_SCRATCH = "ResNet-18 (from scratch)"
LABEL_SAME_BACKBONE = "Same-backbone supervised (CAE encoder + linear)"
BASELINES = ("resnet18", "same_backbone")
WEIGHT_CHOICES = ("auto", "imagenet", None)

#: ImageNet channel statistics (torchvision's ``ResNet18_Weights.IMAGENET1K_V1.transforms()``).
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class PretrainedWeightsUnavailable(RuntimeError):
    """Raised when ``weights="imagenet"`` was asked for and the ImageNet weights cannot be loaded."""


class PretrainedWeightsWarning(UserWarning):
    """Warned when ``weights="auto"`` falls back to a randomly initialised ResNet-18."""


# ------------------------------------------------------------------------------------------------
# 1. Transfer learning: ResNet-18 adapted to 28 px
# ------------------------------------------------------------------------------------------------
def _imagenet_weights() -> Any:
    from torchvision.models import ResNet18_Weights

    return ResNet18_Weights.IMAGENET1K_V1


def resnet18_weights_path() -> Path:
    """Where torch.hub looks for the ImageNet ResNet-18 weights: ``<torch.hub.get_dir()>/checkpoints/resnet18-f37072fd.pth``.

    ``torch.hub.get_dir()`` is ``$TORCH_HOME/hub`` (``TORCH_HOME`` defaults to ``$XDG_CACHE_HOME/torch``,
    i.e. ``~/.cache/torch``), unless ``torch.hub.set_dir`` was called. It is read at call time.
    """
    url = _imagenet_weights().url
    return Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name


class ResNet18Classifier(nn.Module):
    """ResNet-18 for small images that takes ``x: (B, C, H, W)`` in ``[0, 1]`` and returns logits ``(B, K)``.

    The ImageNet normalisation happens inside the model, so every caller feeds the same ``[0, 1]``
    batches as to the CAE. For 1 channel the mean / std of the three ImageNet channels are
    averaged (0.449 / 0.226): see :func:`build_resnet18` for why this makes the summed ``conv1``
    exactly equivalent to feeding the grey image replicated in R, G and B.

    Attributes:
        resnet: the (adapted) ``torchvision.models.ResNet``.
        label: ``"ResNet-18 (ImageNet transfer)"`` or ``"ResNet-18 (from scratch)"``.
    """

    def __init__(self, resnet: nn.Module, n_channels: int, label: str) -> None:
        super().__init__()
        self.resnet = resnet
        self.label = label
        mean, std = torch.tensor(IMAGENET_MEAN), torch.tensor(IMAGENET_STD)
        if n_channels == 1:
            mean, std = mean.mean(0, keepdim=True), std.mean(0, keepdim=True)
        self.register_buffer("mean", mean.view(1, n_channels, 1, 1))
        self.register_buffer("std", std.view(1, n_channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resnet((x - self.mean) / self.std)


def _load_imagenet_state_dict(allow_download: bool, download_timeout: float) -> tuple[dict[str, Any] | None, str]:
    """Return ``(state_dict, "")`` or ``(None, reason)``; never touches the network unless allowed."""
    weights = _imagenet_weights()
    path = resnet18_weights_path()
    manual = (
        f"To use ImageNet transfer offline, download {weights.url} on a machine with internet access "
        f"and copy it to {path} (set TORCH_HOME to change the folder)."
    )
    if not path.is_file() and not allow_download:
        return None, f"the ImageNet ResNet-18 weights are not in the torch hub cache ({path}) and allow_download=False. {manual}"
    previous = socket.getdefaulttimeout()
    if not path.is_file():
        # torch.hub's urlopen has no timeout of its own; a socket default timeout bounds every
        # blocking network operation, so a dead connection fails after `download_timeout` s
        # instead of hanging the classroom. torch.hub writes to a temporary file and renames it
        # only when complete, and check_hash verifies the SHA256 prefix in the file name.
        socket.setdefaulttimeout(download_timeout)
    try:
        return weights.get_state_dict(progress=False, check_hash=True), ""
    except Exception as err:  # network error, timeout, corrupted or truncated file
        what = "download" if not path.is_file() else "load"
        hint = f" If the file is corrupted, delete {path} and try again." if path.is_file() else ""
        return None, f"could not {what} the ImageNet ResNet-18 weights ({type(err).__name__}: {err}).{hint} {manual}"
    finally:
        socket.setdefaulttimeout(previous)


def build_resnet18(
    n_channels: int,
    n_classes: int,
    weights: str | None = "auto",
    allow_download: bool = False,
    download_timeout: float = 10.0,
) -> tuple[nn.Module, str]:
    """A torchvision ResNet-18 adapted to 28-px, 1- or 3-channel images.

    Args:
        n_channels: 1 (grey) or 3 (RGB).
        n_classes: number of outputs K of the new ``fc`` layer.
        weights: ``"auto"`` uses the ImageNet weights if they can be loaded and otherwise warns
            (:class:`PretrainedWeightsWarning`) and starts from scratch; ``"imagenet"`` insists and
            raises :class:`PretrainedWeightsUnavailable` instead of falling back; ``None`` starts
            from scratch silently.
        allow_download: if the weights are not in the torch hub cache
            (:func:`resnet18_weights_path`), download them from ``ResNet18_Weights.IMAGENET1K_V1.url``.
            Off by default: nothing here touches the network unless you ask.
        download_timeout: seconds every network operation may block before the download gives up.

    Returns:
        ``(model, label)``: a :class:`ResNet18Classifier` (``x (B, C, H, W)`` in [0, 1] -> logits
        ``(B, K)``) and ``"ResNet-18 (ImageNet transfer)"`` or ``"ResNet-18 (from scratch)"``,
        saying honestly which one you got (also stored as ``model.label``).

    Adaptation to 28 px. The ImageNet stem (7x7 conv with stride 2, then a stride-2 max-pool)
    shrinks the image 4x before the first residual block: 224 px -> 56 px, but 28 px -> 7 px, and
    layer4 would then see a single pixel. We keep the pretrained 7x7 kernel but use stride 1 and
    padding 3, and replace the max-pool by ``Identity``, so the stem keeps the 28x28 size and the
    four stages see 28, 14, 7 and 4 px, the same grid sizes ImageNet-trained filters saw relative
    to their objects (56, 28, 14, 7 at 224 px), halved.

    One channel. ``conv1``'s weight is summed over its three input channels. A conv is linear in
    its input, so ``conv(W_R, g) + conv(W_G, g) + conv(W_B, g) = conv(W_R + W_G + W_B, g)``: the
    summed kernel on the grey image ``g`` gives exactly what the original kernel gives on ``g``
    replicated in R, G and B, provided the three copies are normalised alike; the model therefore
    normalises grey input with the average ImageNet mean / std (0.449 / 0.226).

    Example:
        >>> model, label = build_resnet18(1, 2, weights=None)
        >>> model(torch.rand(4, 1, 28, 28)).shape, label
        (torch.Size([4, 2]), 'ResNet-18 (from scratch)')
    """
    from torchvision.models import resnet18

    if weights not in WEIGHT_CHOICES:
        raise ValueError(f"unknown weights {weights!r}; choose one of {WEIGHT_CHOICES}")
    if n_channels not in (1, 3):
        raise ValueError(f"n_channels must be 1 or 3, got {n_channels}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be >= 2, got {n_classes}")

    net = resnet18(weights=None)  # 1000 ImageNet classes, so a pretrained state dict loads strictly
    label = LABEL_SCRATCH
    if weights is not None:
        state_dict, reason = _load_imagenet_state_dict(allow_download, download_timeout)
        if state_dict is not None:
            try:
                net.load_state_dict(state_dict)
                label = LABEL_TRANSFER
            except Exception as err:  # a file that is not a ResNet-18 state dict
                reason = f"{resnet18_weights_path()} is not a ResNet-18 state dict ({err}); delete it and try again."
        if label != LABEL_TRANSFER:
            if weights == "imagenet":
                raise PretrainedWeightsUnavailable(f"weights='imagenet' was requested but {reason}")
            warnings.warn(f"Training ResNet-18 FROM SCRATCH: {reason}", PretrainedWeightsWarning, stacklevel=2)

    old = net.conv1
    conv1 = nn.Conv2d(n_channels, 64, kernel_size=7, stride=1, padding=3, bias=False)
    with torch.no_grad():
        conv1.weight.copy_(old.weight.sum(dim=1, keepdim=True) if n_channels == 1 else old.weight)
    net.conv1 = conv1
    net.maxpool = nn.Identity()
    net.fc = nn.Linear(net.fc.in_features, n_classes)
    return ResNet18Classifier(net, n_channels, label), label


# ------------------------------------------------------------------------------------------------
# 2. Same backbone: the CAE encoder with a linear head
# ------------------------------------------------------------------------------------------------
class SameBackboneClassifier(nn.Module):
    """The CAE encoder (:class:`~cae_lib.models.Encoder`) followed by ``Linear(L, K)``, trained with labels.

    The fair ceiling for the architecture: the same convolutions, the same latent size L and the
    same input as the CAE, but supervised. For the VAE variant the head reads ``mu``.

    To fine-tune a trained CAE instead of starting from random weights, copy its encoder first:
    ``clf.encoder.load_state_dict(cae.encoder.state_dict())``.

    Args:
        model_cfg: the CAE's :class:`~cae_lib.config.ModelConfig` (its ``in_channels`` must match the data).
        n_classes: K.

    ``forward(x: (B, C, H, W) in [0, 1]) -> logits (B, K)``.

    Example:
        >>> clf = SameBackboneClassifier(ModelConfig(latent_dim=8, width=4), n_classes=3)
        >>> clf(torch.rand(5, 1, 28, 28)).shape
        torch.Size([5, 3])
    """

    def __init__(self, model_cfg: ModelConfig, n_classes: int) -> None:
        super().__init__()
        model_cfg.validate()
        if n_classes < 2:
            raise ValueError(f"n_classes must be >= 2, got {n_classes}")
        self.cfg = model_cfg
        self.encoder = Encoder(model_cfg)
        self.head = nn.Linear(model_cfg.latent_dim, n_classes)
        self.label = LABEL_SAME_BACKBONE

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, _ = self.encoder(x)
        return self.head(mu)


# ------------------------------------------------------------------------------------------------
# 3. Objective and configuration
# ------------------------------------------------------------------------------------------------
class ClassificationObjective:
    """Cross-entropy for the :class:`~cae_lib.trainer.Trainer`: ``(model, (x, y), generator) -> (loss, logs)``.

    Args:
        augment: if given, each training batch is replaced by ONE random view of itself (classic
            data augmentation, unlike the two views of the contrastive loss). Never applied in
            eval mode, so validation is deterministic.

    ``logs`` holds ``"loss"`` (mean cross-entropy) and ``"acc"`` (fraction of the batch right).
    """

    def __init__(self, augment: ContrastiveAugment | None = None) -> None:
        self.augment = augment

    def __call__(self, model: nn.Module, batch: Sequence[torch.Tensor], generator: torch.Generator) -> tuple[torch.Tensor, dict[str, float]]:
        x, y = batch[0], batch[1]
        if self.augment is not None and model.training:
            x = self.augment(x, generator)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        acc = (logits.detach().argmax(1) == y).float().mean()
        return loss, {"loss": float(loss.detach()), "acc": float(acc)}


@dataclass
class SupervisedConfig:
    """Settings of one supervised run. Defaults suit the same-backbone model; use
    :meth:`for_model` to get the ResNet-18 defaults.

    Measured with PneumoniaMNIST-sized data (4708 grey 28-px training images, 524 validation)
    on 2 CPU cores (torch 2.14 CPU, 2 threads), seconds per epoch (training; the validation pass
    adds ~2 s for ResNet-18, <0.5 s for the small model):

    * ResNet-18, batch 64: 39 s on an idle machine (72 s with 1 thread), 70-300 s when the two
      cores are shared with other busy jobs (thread oversubscription hurts a lot);
    * same backbone (width 32, L = 32), batch 64 to 256: 0.9 s idle, 6-30 s shared.

    Hence ``for_model("resnet18")`` = 3 epochs (~2 min on 2 idle cores, ~4 min on one core or a
    busy machine; we saw 14 min with three other jobs running) and the same-backbone default =
    15 epochs (~15 s idle, ~3 min at worst).
    ResNet-18 keeps 28x28 feature maps in its first stage, so it is memory-hungry: batch 64
    peaks at about 1.5 GB of process memory (batch 128: 2.0 GB, batch 256: 2.3 GB); the small
    model peaks below 0.9 GB. On PneumoniaMNIST the same-backbone model picked epoch 12 (of 30,
    so the 15-epoch default gives the same model): test accuracy 0.857, balanced accuracy 0.811,
    AUC 0.970 (majority floor 0.625); ResNet-18 *from scratch* with the 3-epoch default picked
    epoch 3: test accuracy 0.921, balanced accuracy 0.912, AUC 0.977 (seed 0, one run each).

    On a GPU use more epochs (the MedMNIST v2 benchmark trains ResNet-18 for 100 epochs).

    Attributes:
        epochs: passes over the (labelled) training set.
        batch_size: images per optimisation step.
        lr: Adam learning rate (1e-3 suits fine-tuning the pretrained ResNet; the small encoder
            trains well with 3e-3).
        weight_decay: Adam L2 penalty.
        seed: seeds the model initialisation (in :func:`run_baseline`), the shuffling, the
            augmentation and the label subset.
        augment_strength: strength of the single augmented view (see
            :class:`~cae_lib.config.AugmentConfig`); 0 switches augmentation off.
        hflip: allow horizontal flips (off: chest X-rays are not left-right symmetric).
        label_fraction: fraction of the training labels used (a class-stratified random subset),
            to compare with the CAE in the low-label regime. Ignored when ``label_indices`` is given.
        early_stopping_patience: stop after this many epochs without a better validation accuracy.
        grad_clip: max gradient norm (None: no clipping).
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        eval_batch_size: batch size for validation / test predictions.
    """

    epochs: int = 15
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    seed: int = 0
    augment_strength: float = 0.5
    hflip: bool = False
    label_fraction: float = 1.0
    early_stopping_patience: int | None = None
    grad_clip: float | None = 5.0
    device: str = "auto"
    eval_batch_size: int = 256

    def validate(self) -> "SupervisedConfig":
        if self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (BatchNorm), got {self.batch_size}")
        if not 0 < self.label_fraction <= 1:
            raise ValueError(f"label_fraction must be in (0, 1], got {self.label_fraction}")
        if self.augment_strength < 0:
            raise ValueError(f"augment_strength must be >= 0, got {self.augment_strength}")
        return self

    @classmethod
    def for_model(cls, kind: str, **overrides: Any) -> "SupervisedConfig":
        """CPU-friendly defaults: ``"resnet18"`` 3 epochs, batch 64, lr 1e-3; ``"same_backbone"`` 15 epochs, batch 128, lr 3e-3."""
        presets = {"resnet18": dict(epochs=3, batch_size=64, lr=1e-3), "same_backbone": dict(epochs=15, batch_size=128, lr=3e-3)}
        if kind not in presets:
            raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}")
        return cls(**{**presets[kind], **overrides})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def train_config(self) -> TrainConfig:
        """The :class:`~cae_lib.config.TrainConfig` handed to the Trainer (early stopping is done here, on accuracy)."""
        return TrainConfig(
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, weight_decay=self.weight_decay,
            seed=self.seed, device=self.device, early_stopping_patience=None, grad_clip=self.grad_clip,
        )

    def augment(self) -> ContrastiveAugment | None:
        if self.augment_strength == 0:
            return None
        return ContrastiveAugment(AugmentConfig(strength=self.augment_strength, hflip=self.hflip))


# ------------------------------------------------------------------------------------------------
# 4. Training and evaluation
# ------------------------------------------------------------------------------------------------
def _images_of(data: Any) -> np.ndarray:
    return data if isinstance(data, np.ndarray) else np.asarray(data.images)


def _labels_of(data: Any) -> np.ndarray:
    return np.asarray(data.labels).reshape(-1).astype(np.int64)


def _n_classes_of(*datasets: Any) -> int:
    for d in datasets:
        k = getattr(d, "n_classes", None)
        if k:
            return int(k)
    return int(max(_labels_of(d).max() for d in datasets if d is not None)) + 1


def _n_channels_of(data: Any) -> int:
    c = getattr(data, "n_channels", None)
    if c:
        return int(c)
    images = _images_of(data)
    return 1 if images.ndim == 3 else int(images.shape[-1])


def _device_of(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, data: Any, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Class predictions and softmax probabilities, computed in eval mode under ``torch.no_grad()``.

    Args:
        model: ``x (B, C, H, W) in [0, 1] -> logits (B, K)``.
        data: anything with ``.images`` (uint8, (N, H, W) or (N, H, W, C)), or such an array.

    Returns:
        ``(pred (N,) int64, probs (N, K) float32)``. The model's train / eval mode is restored afterwards.
    """
    batches = ImageBatches(_images_of(data))
    device, was_training = _device_of(model), model.training
    model.eval()
    try:
        probs = []
        for idx in torch.arange(len(batches)).split(batch_size):
            x, _ = batches.get_batch(idx)
            probs.append(torch.softmax(model(x.to(device)).float(), dim=1).cpu())
        p = torch.cat(probs).numpy() if probs else np.zeros((0, 0), np.float32)
    finally:
        model.train(was_training)
    return p.argmax(1).astype(np.int64), p.astype(np.float32)


def classification_metrics(y_true: np.ndarray, probs: np.ndarray, majority_class: int | None = None) -> dict[str, float | None]:
    """Accuracy, balanced accuracy and AUC of probabilities ``probs (N, K)`` against ``y_true (N,)``.

    AUC is the ROC AUC of the positive class for K = 2 and the macro one-vs-rest AUC otherwise;
    it is ``None`` when some class is absent from ``y_true`` (undefined). ``majority_floor`` is the
    accuracy of always predicting ``majority_class`` (the most frequent *training* class; default:
    the most frequent class of ``y_true``).
    """
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

    y_true = np.asarray(y_true).reshape(-1)
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(1, keepdims=True)  # float32 softmax rows can miss 1 by more than sklearn allows
    pred = probs.argmax(1)
    k = probs.shape[1]
    auc = None
    if len(np.unique(y_true)) == k:
        auc = float(roc_auc_score(y_true, probs[:, 1])) if k == 2 else float(
            roc_auc_score(y_true, probs, multi_class="ovr", average="macro", labels=np.arange(k))
        )
    if majority_class is None:
        majority_class = int(np.bincount(y_true, minlength=k).argmax())
    return {
        "accuracy": float(accuracy_score(y_true, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
        "auc": auc,
        "majority_floor": float(np.mean(y_true == majority_class)),
    }


def train_supervised(
    model: nn.Module,
    train_data: Any,
    val_data: Any | None,
    test_data: Any,
    config: SupervisedConfig | None = None,
    label_indices: Sequence[int] | np.ndarray | None = None,
    extra_train: tuple[np.ndarray, np.ndarray] | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``model`` with labels, keep the epoch with the best validation accuracy, score it on the test split.

    Args:
        model: ``x (B, C, H, W) in [0, 1] -> logits (B, K)`` (e.g. from :func:`build_resnet18` or
            :class:`SameBackboneClassifier`). Trained in place; on return it holds the best weights.
        train_data, val_data, test_data: objects with ``.images`` (uint8 (N, H, W) or (N, H, W, C))
            and ``.labels`` ((N,) ints), e.g. :func:`cae_lib.data.load_dataset` results. Without
            ``val_data`` the last epoch is kept.
        config: a :class:`SupervisedConfig` (default: the same-backbone defaults).
        label_indices: rows of ``train_data`` whose labels may be used (overrides
            ``config.label_fraction``).
        extra_train: optional ``(images uint8, labels)`` appended to the training set, e.g. images
            generated by a sampler, for the augmentation benchmark.
        progress: show progress bars.

    Returns:
        A dict with the test ``accuracy``, ``balanced_accuracy``, ``auc`` (None if undefined),
        ``majority_floor``, ``n_test``, ``n_train_labels`` (labelled real images used),
        ``n_extra_train``, ``train_seconds``, ``peak_memory_mb`` (this process so far),
        ``best_epoch`` (1-based), ``val_accuracy`` (at the best epoch), ``epochs_run``,
        ``n_params``, ``label`` (the model's ``.label``), ``history`` and ``config``.
    """
    config = (config or SupervisedConfig()).validate()
    images, labels = _images_of(train_data), _labels_of(train_data)
    n_classes = _n_classes_of(train_data, test_data)
    if label_indices is not None:
        idx = np.asarray(label_indices, dtype=np.int64).reshape(-1)
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(labels):
            raise ValueError(f"label_indices must be non-empty row numbers in [0, {len(labels)}) of train_data")
    elif config.label_fraction < 1:
        idx = label_subset(labels, config.label_fraction, config.seed)
    else:
        idx = np.arange(len(labels))
    images, labels = images[idx], labels[idx]
    n_train_labels = len(idx)
    n_extra = 0
    if extra_train is not None:
        extra_images, extra_labels = np.asarray(extra_train[0]), np.asarray(extra_train[1]).reshape(-1).astype(np.int64)
        if extra_images.dtype != np.uint8 or extra_images.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"extra_train images must be uint8 with shape (N, {', '.join(map(str, images.shape[1:]))}) like the "
                f"training images; got {extra_images.dtype} {extra_images.shape}"
            )
        if len(extra_labels) != len(extra_images) or (len(extra_labels) and not 0 <= extra_labels.min() <= extra_labels.max() < n_classes):
            raise ValueError(f"extra_train needs one label in [0, {n_classes}) per image")
        images, labels = np.concatenate([images, extra_images]), np.concatenate([labels, extra_labels])
        n_extra = len(extra_labels)

    objective = ClassificationObjective(config.augment())
    best: dict[str, Any] = {"acc": -1.0, "epoch": 0, "state": None}
    y_val = _labels_of(val_data) if val_data is not None else None

    def keep_best(trainer: Trainer, logs: dict[str, float]) -> None:
        epoch = int(logs["epoch"])
        if y_val is None:
            best.update(acc=float("nan"), epoch=epoch)
            return
        _, p = predict(trainer.model, val_data, config.eval_batch_size)
        logs["val_acc"] = float(np.mean(p.argmax(1) == y_val))  # exact, over every validation image
        logs["val_loss"] = float(F.nll_loss(torch.log(torch.from_numpy(p).clamp_min(1e-12)), torch.from_numpy(y_val)))
        if logs["val_acc"] > best["acc"]:
            state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            best.update(acc=logs["val_acc"], epoch=epoch, state=state)
        elif config.early_stopping_patience is not None and epoch - best["epoch"] >= config.early_stopping_patience:
            trainer.state.stop = True

    trainer = Trainer(
        model, objective, ImageBatches(images, labels), config.train_config(), val_data=None,
        callbacks=[keep_best], progress=progress,
    )
    t0 = time.perf_counter()
    history = trainer.fit()
    train_seconds = time.perf_counter() - t0
    if best["state"] is not None:
        model.load_state_dict(best["state"])
    model.eval()

    _, probs = predict(model, test_data, config.eval_batch_size)
    y_test = _labels_of(test_data)
    if probs.shape[1] != n_classes:
        raise ValueError(f"the model has {probs.shape[1]} outputs but the data has {n_classes} classes")
    majority = int(np.bincount(labels, minlength=n_classes).argmax())
    result: dict[str, Any] = classification_metrics(y_test, probs, majority)
    result.update(
        n_test=len(y_test),
        n_train_labels=n_train_labels,
        n_extra_train=n_extra,
        train_seconds=train_seconds,
        peak_memory_mb=peak_memory_mb(),
        best_epoch=best["epoch"],
        val_accuracy=best["acc"] if y_val is not None else None,
        epochs_run=len(history),
        n_params=count_parameters(model),
        label=getattr(model, "label", type(model).__name__),
        history=copy.deepcopy(history),
        config=config.to_dict(),
    )
    return result


def run_baseline(
    kind: str,
    train: Any,
    val: Any | None,
    test: Any,
    config: SupervisedConfig | None = None,
    model_cfg: ModelConfig | None = None,
    weights: str | None = "auto",
    **train_kwargs: Any,
) -> dict[str, Any]:
    """Build and train one supervised baseline; return :func:`train_supervised`'s dict plus ``"method"`` and ``"kind"``.

    Args:
        kind: ``"resnet18"`` or ``"same_backbone"``.
        train, val, test: the three splits (``.images``, ``.labels``, ``.n_classes``, ``.n_channels``).
        config: default :meth:`SupervisedConfig.for_model(kind) <SupervisedConfig.for_model>`.
        model_cfg: the CAE's architecture for ``"same_backbone"`` (default: ``ModelConfig`` with the
            data's channels and image size).
        weights: for ``"resnet18"``, see :func:`build_resnet18`.
        **train_kwargs: passed to :func:`train_supervised` (``label_indices``, ``extra_train``, ``progress``).

    ``result["method"]`` is the honest label: ``"ResNet-18 (ImageNet transfer)"``,
    ``"ResNet-18 (from scratch)"`` or ``"Same-backbone supervised (CAE encoder + linear)"``.
    """
    if kind not in BASELINES:
        raise ValueError(f"unknown baseline {kind!r}; choose one of {BASELINES}")
    config = config or SupervisedConfig.for_model(kind)
    n_classes, n_channels = _n_classes_of(train, test), _n_channels_of(train)
    seed_everything(config.seed)
    if kind == "resnet18":
        model, label = build_resnet18(n_channels, n_classes, weights=weights)
    else:
        if model_cfg is None:
            model_cfg = ModelConfig(in_channels=n_channels, image_size=int(_images_of(train).shape[1]))
        if model_cfg.in_channels != n_channels:
            raise ValueError(
                f"model_cfg.in_channels={model_cfg.in_channels} but the data has {n_channels} channel(s); "
                f"use dataclasses.replace(model_cfg, in_channels={n_channels})"
            )
        model = SameBackboneClassifier(model_cfg, n_classes)
        label = model.label
    result = train_supervised(model, train, val, test, config, **train_kwargs)
    result["method"] = label
    result["kind"] = kind
    return result
