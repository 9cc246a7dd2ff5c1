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

Modules: ``resnet`` (transfer learning), ``same_backbone`` (the CAE encoder + linear head),
``config`` (objective and settings), ``supervised`` (training, prediction, metrics).
"""

from cae_lib.baselines.config import BASELINES, ClassificationObjective, SupervisedConfig
from cae_lib.baselines.resnet import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LABEL_SCRATCH,
    LABEL_TRANSFER,
    WEIGHT_CHOICES,
    PretrainedWeightsUnavailable,
    PretrainedWeightsWarning,
    ResNet18Classifier,
    build_resnet18,
    resnet18_weights_path,
)
from cae_lib.baselines.same_backbone import LABEL_SAME_BACKBONE, SameBackboneClassifier
from cae_lib.baselines.supervised import classification_metrics, predict, run_baseline, train_supervised
from cae_lib.probes import label_subset  # re-exported: the one stratified label subset

__all__ = [
    "BASELINES",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LABEL_SAME_BACKBONE",
    "LABEL_SCRATCH",
    "LABEL_TRANSFER",
    "WEIGHT_CHOICES",
    "ClassificationObjective",
    "PretrainedWeightsUnavailable",
    "PretrainedWeightsWarning",
    "ResNet18Classifier",
    "SameBackboneClassifier",
    "SupervisedConfig",
    "build_resnet18",
    "classification_metrics",
    "label_subset",
    "predict",
    "resnet18_weights_path",
    "run_baseline",
    "train_supervised",
]
