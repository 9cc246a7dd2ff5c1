"""kNN and linear-probe evaluation of frozen latents.

Both probes are trained on the **train** split's latents and scored on the **test** split, as
in the evaluation protocol. They measure how much label information the latents hold in a
simple, readable form: a kNN probe asks "are neighbours of the same class?", a linear probe asks
"is there a hyperplane that separates the classes?".

Label efficiency: train the probe on 1 %, 10 % and 100 % of the training labels, chosen with
:func:`label_subset` (stratified, at least one example per class).
"""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, balanced_accuracy_score, roc_auc_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def _check_split(z: np.ndarray, y: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Return (z, y) as a finite (N, D) float array and (N,) labels, or raise ValueError."""
    z, y = np.asarray(z, dtype=np.float64), np.asarray(y)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if z.ndim != 2:
        raise ValueError(f"z_{name} must be 2-D (N, D), got shape {z.shape}")
    if y.shape != (len(z),):
        raise ValueError(f"y_{name} must have shape ({len(z)},) to match z_{name}, got {y.shape}")
    if not np.all(np.isfinite(z)):
        raise ValueError(f"z_{name} contains NaN or inf; check the encoder output")
    return z, y


def knn_accuracy(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    k: int = 10,
    metric: str = "cosine",
) -> float:
    """Test accuracy of a k-nearest-neighbour classifier on the latents.

    Each test point gets the majority label of its ``k`` nearest training points (default
    k = 10, cosine distance: the geometry a contrastive loss trains for; use
    ``metric="euclidean"`` for plain autoencoders if you prefer). Always state k with the result.

    Args:
        z_train: (N, D) training latents; y_train: (N,) labels.
        z_test: (M, D) test latents; y_test: (M,) labels.
        k: number of neighbours (1 <= k <= N).
        metric: ``"cosine"`` or ``"euclidean"``.
    """
    z_train, y_train = _check_split(z_train, y_train, "train")
    z_test, y_test = _check_split(z_test, y_test, "test")
    if metric not in ("cosine", "euclidean"):
        raise ValueError(f"metric must be 'cosine' or 'euclidean', got {metric!r}")
    if not 1 <= k <= len(z_train):
        raise ValueError(f"k must be between 1 and the number of training points ({len(z_train)}), got {k}")
    knn = KNeighborsClassifier(n_neighbors=k, metric=metric).fit(z_train, y_train)
    return float(accuracy_score(y_test, knn.predict(z_test)))


def linear_probe(
    z_train: np.ndarray,
    y_train: np.ndarray,
    z_test: np.ndarray,
    y_test: np.ndarray,
    seed: int = 0,
    standardize: bool = True,
    C: float = 1.0,
    max_iter: int = 2000,
    class_weight: str | None = None,
) -> dict:
    """Fit a logistic-regression probe on frozen training latents and score it on the test set.

    The probe is multinomial (softmax) logistic regression with exactly one output per class.
    For a binary task scikit-learn stores a single weight row: that is the 2-class logistic
    model, identical to a 2-output softmax (softmax of two logits is the sigmoid of their
    difference). ``model.classes_`` always lists one entry per class.

    Args:
        z_train: (N, D) training latents; y_train: (N,) labels (at least 2 classes).
        z_test: (M, D) test latents; y_test: (M,) labels.
        seed: seed of the solver.
        standardize: scale each latent dimension to zero mean and unit variance first
            (fitted on the training latents only).
        C: inverse L2 regularisation strength.
        max_iter: iterations of the L-BFGS solver.
        class_weight: ``None`` or ``"balanced"`` (each class weighted by 1 / its frequency, so the
            probe does not inherit the training split's class prior; useful when the test split's
            prior differs, as in PneumoniaMNIST: 74 % pneumonia in train, 62.5 % in test).

    Returns:
        ``{"accuracy", "balanced_acc", "auc", "n_classes", "model"}``. ``auc`` is the ROC AUC for
        binary tasks and None otherwise; ``model`` is the fitted sklearn pipeline (it has
        ``predict``, ``predict_proba`` and ``classes_``).
    """
    z_train, y_train = _check_split(z_train, y_train, "train")
    z_test, y_test = _check_split(z_test, y_test, "test")
    n_classes = len(np.unique(y_train))
    if n_classes < 2:
        raise ValueError("the training labels contain a single class; a probe needs at least 2")
    model = _probe_model(seed, standardize, C, max_iter, class_weight).fit(z_train, y_train)
    assert len(model.classes_) == n_classes, "the probe must have one output per class"
    y_hat = model.predict(z_test)
    auc = None
    if n_classes == 2 and len(np.unique(y_test)) == 2:
        auc = float(roc_auc_score(y_test == model.classes_[1], model.predict_proba(z_test)[:, 1]))
    return {
        "accuracy": float(accuracy_score(y_test, y_hat)),
        "balanced_acc": float(balanced_accuracy_score(y_test, y_hat)),
        "auc": auc,
        "n_classes": n_classes,
        "model": model,
    }


def _probe_model(seed: int, standardize: bool, C: float, max_iter: int, class_weight: str | None = None) -> Pipeline:
    """(Optional standardisation) + logistic regression (lbfgs: multinomial for > 2 classes)."""
    logreg = LogisticRegression(C=C, max_iter=max_iter, random_state=seed, class_weight=class_weight)
    return make_pipeline(StandardScaler(), logreg) if standardize else make_pipeline(logreg)


def label_subset(y: np.ndarray, fraction: float, seed: int = 0) -> np.ndarray:
    """Indices of a stratified random subset holding ``fraction`` of each class.

    Every class keeps ``round(fraction * count)`` examples and at least one, so a 1 % subset of
    a small class still contains it. Used for label-efficiency curves (1 %, 10 %, 100 %).

    Args:
        y: (N,) labels.
        fraction: in (0, 1]; 1.0 returns every index.
        seed: seed of the random choice (the same seed gives the same subset).

    Returns:
        Sorted (M,) int indices into ``y``.
    """
    y = np.asarray(y)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    chosen = []
    for label in np.unique(y):
        members = np.flatnonzero(y == label)
        n = max(1, int(round(fraction * len(members))))
        chosen.append(rng.choice(members, size=n, replace=False))
    return np.sort(np.concatenate(chosen))
