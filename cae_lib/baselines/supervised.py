"""Training and scoring a supervised baseline: predict, metrics, :func:`train_supervised`, :func:`run_baseline`."""

from __future__ import annotations

import copy
import time
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score

from cae_lib.baselines.config import BASELINES, ClassificationObjective, SupervisedConfig
from cae_lib.baselines.resnet import build_resnet18
from cae_lib.baselines.same_backbone import SameBackboneClassifier
from cae_lib.config import ModelConfig
from cae_lib.batches import ImageBatches, images_of, labels_of
from cae_lib.models import count_parameters
from cae_lib.probes import label_subset  # the one stratified subset used everywhere
from cae_lib.run_trainer import RunTrainer
from cae_lib.machine import peak_memory_mb
from cae_lib.utils import model_device, seed_everything


def _n_classes_of(*datasets: Any) -> int:
    for d in datasets:
        k = getattr(d, "n_classes", None)
        if k:
            return int(k)
    return int(max(labels_of(d).max() for d in datasets if d is not None)) + 1


def _n_channels_of(data: Any) -> int:
    c = getattr(data, "n_channels", None)
    if c:
        return int(c)
    images = images_of(data)
    return 1 if np.ndim(images) == 3 else int(np.shape(images)[-1])


@torch.no_grad()
def predict(model: nn.Module, data: Any, batch_size: int = 512) -> tuple[np.ndarray, np.ndarray]:
    """Class predictions and softmax probabilities, computed in eval mode under ``torch.no_grad()``.

    Args:
        model: ``x (B, C, H, W) in [0, 1] -> logits (B, K)``.
        data: anything with ``.images`` (uint8, (N, H, W) or (N, H, W, C)), or such an array.

    Returns:
        ``(pred (N,) int64, probs (N, K) float32)``. The model's train / eval mode is restored afterwards.
    """
    batches = ImageBatches(images_of(data))
    device, was_training = model_device(model), model.training
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
    images, labels = images_of(train_data), labels_of(train_data)
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
    y_val = labels_of(val_data) if val_data is not None else None

    def validate(model: nn.Module) -> dict[str, float]:
        """Exact accuracy and loss over every validation image (the trainer keeps the best epoch)."""
        _, p = predict(model, val_data, config.eval_batch_size)
        return {
            "val_acc": float(np.mean(p.argmax(1) == y_val)),
            "val_loss": float(F.nll_loss(torch.log(torch.from_numpy(p).clamp_min(1e-12)), torch.from_numpy(y_val))),
        }

    trainer = RunTrainer(
        model, objective, ImageBatches(images, labels), config.train_config(), progress=progress,
        validate=validate if y_val is not None else None, monitor="val_acc", mode="max", keep_best=True,
    )
    t0 = time.perf_counter()
    history = trainer.fit()  # on return the model holds the weights of the best validation epoch
    train_seconds = time.perf_counter() - t0
    best_epoch = trainer.state.best_epoch if y_val is not None else len(history)

    _, probs = predict(model, test_data, config.eval_batch_size)
    y_test = labels_of(test_data)
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
        best_epoch=best_epoch,
        val_accuracy=trainer.state.best_val if y_val is not None else None,
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
            model_cfg = ModelConfig(in_channels=n_channels, image_size=int(images_of(train).shape[1]))
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
