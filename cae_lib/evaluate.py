"""Evaluate a trained model the way the evaluation protocol asks (see :class:`EvalConfig`).

Unsupervised (labels only used to *score*):
    spectral clustering on the kNN graph of the codes (``EvalConfig.method``; every other clusterer
    is scored beside it on the same codes) with k = number of classes, fitted on the train split's
    codes and applied to the official test split, on a fixed feature choice (``EvalConfig.cluster_features``; a per-run
    choice on the val split is an option: :func:`select_clustering`); Hungarian-matched accuracy, NMI, ARI, silhouette; the paper's
    majority-vote accuracy at its K (labelled with K); the majority-class floor beside it all.
Frozen-feature probes (labels used to *train a probe*, never the encoder):
    kNN (k = 10, cosine) and a logistic-regression linear probe, trained on train, scored on test.

Every number is on the official test split unless its key starts with ``val_`` (the validation
split, used for model selection so that nothing is tuned on test).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cae_lib.checkpoint import check_data_matches, load_checkpoint
from cae_lib.cluster import METHODS, LatentClusterer
from cae_lib.data import load_dataset
from cae_lib.embed import embed
from cae_lib.metrics import (
    clustering_metrics,
    hungarian_accuracy,
    majority_class_floor,
    majority_vote_accuracy,
)
from cae_lib.probes import knn_accuracy, linear_probe
from cae_lib.files import write_json


@dataclass
class EvalConfig:
    """How latents are clustered and probed.

    Attributes:
        cluster_features: the features the clusterers cluster, ``"space/preprocess"``: the space is the
            latent code z (``"latent"``) or its projection h = g(z) (``"projection"``), the
            preprocessing ``none``, ``l2`` (unit sphere, the geometry NT-Xent trains) or
            ``standardize``. The default, ``"projection/none"``, is the space the contrastive loss
            shapes, as the network left it; over the 174 runs of ``benchmarks/sweep_defaults.py``
            (validation split only) it had the best worst run and the best mean of the six.
            ``None`` restores the earlier protocol: every candidate below is fitted on the train
            split and the one with the best Hungarian accuracy on the **validation** split is
            used. That choice never saw the test labels, but on a validation split of a few hundred
            images it changed from seed to seed, and the test accuracy with it.
            Features without a projection (models trained without the contrastive term, the pixel
            and PCA baselines) keep that per-run choice, so a choice made on CAE runs never
            handicaps a baseline.
        spaces, preprocesses: the candidates scored on the validation split (always reported,
            as ``val_hungarian_by_features``).
        method: the clusterer of the headline ``hungarian_acc``: ``"spectral"`` (the default),
            ``"kmeans"``, ``"gmm"``, ``"agglomerative"`` or ``"scan"`` (:data:`cae_lib.cluster.METHODS`).
            Spectral clustering on the kNN graph of h, and its 15 neighbours, were chosen by rules
            written before their sweeps ran, on validation splits only (``benchmarks/sweep_clusterers.py``
            and ``sweep_neighbours.py``; results in ``benchmarks/results/``). (k-means was the
            default before: ``sweep_cluster_methods.md``.)
        compare_methods: every clusterer scored on the same features beside the headline, as
            ``hungarian_by_method`` (test) and ``val_hungarian_by_method``; ``()`` skips them.
        knn_k: neighbours of the kNN probe (stated with every kNN number).
        probe_C: inverse L2 strengths tried for the linear probe; the one with the best
            validation accuracy is used (standard linear-evaluation practice), and reported.

    The headline linear probe (``linear_acc``) is class-balanced (``class_weight="balanced"``), so
    it does not inherit the train split's class prior; the plain probe is reported beside it as
    ``linear_unweighted_acc``. We chose the balanced probe after seeing that the plain one loses
    3 points on PneumoniaMNIST's test split, whose class prior differs from train (62.5 % vs 74 %
    pneumonia): both numbers are always reported.
        paper_k: the K at which the paper reports majority-vote accuracy (their elbow, 7).
    """

    cluster_features: str | None = "projection/none"
    spaces: tuple[str, ...] = ("latent", "projection")
    preprocesses: tuple[str | None, ...] = (None, "l2", "standardize")
    method: str = "spectral"
    compare_methods: tuple[str, ...] = METHODS
    knn_k: int = 10
    knn_metric: str = "cosine"
    paper_k: int = 7
    probe_C: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)


def select_clustering(
    features: dict[str, dict[str, np.ndarray]],
    y_val: np.ndarray,
    n_classes: int,
    config: EvalConfig,
    seed: int = 0,
) -> tuple[str, str | None, LatentClusterer, dict[str, float]]:
    """Pick the (space, preprocess) whose clusterer (``config.method``, fitted on train) scores best on the val split.

    Args:
        features: ``{space: {"train": (N, D), "val": (M, D), ...}}``.

    Returns:
        ``(space, preprocess, fitted clusterer, {"space/preprocess": val Hungarian accuracy})``.
    """
    scores: dict[str, float] = {}
    best: tuple[float, str, str | None, LatentClusterer] | None = None
    for space, feats in features.items():
        for pre in config.preprocesses:
            clusterer = LatentClusterer(n_classes, config.method, pre, seed=seed).fit(feats["train"])
            acc = hungarian_accuracy(y_val, clusterer.predict(feats["val"]))
            scores[f"{space}/{pre or 'none'}"] = acc
            if best is None or acc > best[0] + 1e-12:
                best = (acc, space, pre, clusterer)
    assert best is not None, "no clustering candidates"
    return best[1], best[2], best[3], scores


def fixed_features(name: str, features: dict[str, Any]) -> tuple[str, str | None] | None:
    """``"space/preprocess"`` -> (space, preprocess or None), or None when ``features`` lack that space.

    Features without it (a model with no trained projection head, the pixel and PCA baselines)
    keep the per-run choice on the validation split, so the fixed choice, made on CAE runs,
    never handicaps a baseline.
    """
    space, _, pre = name.partition("/")
    if space not in ("latent", "projection") or pre not in ("none", "l2", "standardize"):
        raise ValueError(f"cluster_features must be 'latent' or 'projection', '/', then 'none', 'l2' or 'standardize'; got {name!r}")
    return (space, None if pre == "none" else pre) if space in features else None


def evaluate_embeddings(
    z: dict[str, np.ndarray],
    y: dict[str, np.ndarray],
    cluster_features: dict[str, dict[str, np.ndarray]] | None = None,
    config: EvalConfig | None = None,
    seed: int = 0,
    assignments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """All metrics from precomputed embeddings.

    Args:
        z: ``{"train", "val", "test"}`` -> (N, D) features for the probes (the latent code).
        y: the same keys -> (N,) labels.
        cluster_features: ``{space: {split: (N, D)}}`` candidates for clustering (default
            ``{"latent": z}``); see :func:`select_clustering`.
        assignments: if a dict is given, it receives ``test_clusters`` (M,), ``clusterer`` and
            ``features`` (the chosen test features), for plots.

    Returns:
        A flat dict; see the module docstring.
    """
    cfg = config or EvalConfig()
    features = cluster_features or {"latent": z}
    n_classes = len(np.unique(y["train"]))
    space, pre, clusterer, val_scores = select_clustering(features, y["val"], n_classes, cfg, seed)
    fixed = fixed_features(cfg.cluster_features, features) if cfg.cluster_features is not None else None
    if fixed is not None:
        space, pre = fixed
        clusterer = LatentClusterer(n_classes, cfg.method, pre, seed=seed).fit(features[space]["train"])
    test_clusters = clusterer.predict(features[space]["test"])
    if assignments is not None:
        assignments.update(test_clusters=test_clusters, clusterer=clusterer, features=features[space])
    out: dict[str, Any] = {"n_classes": n_classes, "n_train": len(y["train"]), "n_test": len(y["test"])}
    m = clustering_metrics(y["test"], test_clusters, z=clusterer.transform(features[space]["test"]), seed=seed)
    out.update({k: m[k] for k in ("hungarian_acc", "nmi", "ari", "silhouette")})
    out["majority_floor"] = majority_class_floor(y["test"])
    out["cluster_features"] = f"{space}/{pre or 'none'}"
    out["val_hungarian_acc"] = val_scores[out["cluster_features"]]
    out["val_hungarian_by_features"] = val_scores
    out["cluster_method"] = cfg.method
    by_method: dict[str, dict[str, float]] = {"val": {}, "test": {}}
    for method in cfg.compare_methods:  # one protocol, every method: the same features, fitted on train
        other = clusterer if method == cfg.method else LatentClusterer(n_classes, method, pre, seed=seed).fit(features[space]["train"])
        for split in ("val", "test"):
            by_method[split][method] = hungarian_accuracy(y[split], other.predict(features[space][split]))
    if by_method["test"]:
        out["hungarian_by_method"], out["val_hungarian_by_method"] = by_method["test"], by_method["val"]
    paper = LatentClusterer(cfg.paper_k, cfg.method, pre, seed=seed).fit(features[space]["train"])
    out[f"majority_vote_acc_k{cfg.paper_k}"] = majority_vote_accuracy(y["test"], paper.predict(features[space]["test"]))
    out["paper_k"] = cfg.paper_k
    out["knn_acc"] = knn_accuracy(z["train"], y["train"], z["test"], y["test"], k=cfg.knn_k, metric=cfg.knn_metric)
    out["knn_k"] = cfg.knn_k
    for suffix, weight in (("", "balanced"), ("_unweighted", None)):
        val_acc = {c: linear_probe(z["train"], y["train"], z["val"], y["val"], seed=seed, C=c, class_weight=weight)["accuracy"] for c in cfg.probe_C}
        best_c = max(cfg.probe_C, key=lambda c: (val_acc[c], -c))  # ties: the stronger regularisation
        probe = linear_probe(z["train"], y["train"], z["test"], y["test"], seed=seed, C=best_c, class_weight=weight)
        out[f"linear{suffix}_C"] = best_c
        out[f"val_linear{suffix}_acc"] = val_acc[best_c]
        out[f"linear{suffix}_acc"] = probe["accuracy"]
        out[f"linear{suffix}_balanced_acc"] = probe["balanced_acc"]
        if probe["auc"] is not None:
            out[f"linear{suffix}_auc"] = probe["auc"]
    return out


def load_splits(dataset: str, data_dir: str | Path | None = None, size: int = 28) -> dict[str, Any]:
    """The train, val and test splits of ``dataset`` as ImageData objects."""
    return {s: load_dataset(dataset, split=s, size=size, data_dir=data_dir) for s in ("train", "val", "test")}


def evaluate_model(
    model: Any,
    splits: dict[str, Any],
    config: EvalConfig | None = None,
    seed: int = 0,
    has_projection: bool = True,
    assignments: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Embed every split (eval mode, no grad) and compute :func:`evaluate_embeddings`.

    ``has_projection=False`` (models trained without the contrastive term, whose projection head
    is untrained) restricts clustering to the latent code.
    """
    cfg = config or EvalConfig()
    t0 = time.perf_counter()
    z = {s: embed(model, d, space="latent") for s, d in splits.items()}
    embed_seconds = time.perf_counter() - t0
    features = {"latent": z}
    if "projection" in cfg.spaces and has_projection:
        features["projection"] = {s: embed(model, d, space="projection") for s, d in splits.items()}
    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    out = evaluate_embeddings(z, y, features, cfg, seed=seed, assignments=assignments)
    if assignments is not None:
        assignments["z"] = z
    out["embed_images_per_sec"] = sum(len(d.labels) for d in splits.values()) / max(embed_seconds, 1e-9)
    out["eval_config"] = asdict(cfg)
    return out


def evaluate_checkpoint(
    checkpoint: str | Path,
    dataset: str | None = None,
    data_dir: str | Path | None = None,
    seed: int = 0,
    json_path: str | Path | None = None,
    config: EvalConfig | None = None,
) -> dict[str, Any]:
    """Load a checkpoint, evaluate it on its dataset (or ``dataset``), optionally write JSON.

    The JSON holds the metrics, the checkpoint's training config and the evaluation config, so
    the numbers can be traced to their settings.
    """
    model, train_cfg, payload = load_checkpoint(checkpoint, expected_dataset=dataset)
    splits = load_splits(train_cfg.dataset, data_dir, train_cfg.size)
    check_data_matches(checkpoint, train_cfg, payload, splits["train"])  # the data it was trained on, or an error
    result = evaluate_model(model, splits, config, seed=seed, has_projection=train_cfg.loss.contrastive_weight > 0)
    result.update(
        dataset=train_cfg.dataset,
        checkpoint=str(checkpoint),
        seed=seed,
        train_config=train_cfg.to_dict(),
        train_seconds=payload.get("extra", {}).get("train_seconds"),
    )
    if json_path:
        write_json(json_path, result)
    return result


#: How each clusterer is named in tables.
CLUSTERER_NAMES = {"kmeans": "k-means", "gmm": "Gaussian mixture", "agglomerative": "Ward", "spectral": "spectral (kNN graph)", "scan": "SCAN"}

HEADLINE = [
    ("hungarian_acc", "Hungarian acc (k = #classes)"),
    ("nmi", "NMI"),
    ("ari", "ARI"),
    ("knn_acc", "kNN acc"),
    ("linear_acc", "linear-probe acc (class-balanced)"),
    ("linear_unweighted_acc", "linear-probe acc (unweighted)"),
    ("majority_floor", "majority-class floor"),
]


def format_metrics(result: dict[str, Any]) -> str:
    """A small Markdown table of the headline metrics of one evaluation."""
    dataset = f"{result['dataset']}, " if result.get("dataset") else ""  # evaluate_model's result has no dataset name
    lines = [f"| metric ({dataset}test split, n = {result['n_test']}) | value |", "|---|---|"]
    for key, name in HEADLINE:
        if key == "knn_acc":
            name = f"kNN acc (k = {result['knn_k']})"
        if key == "hungarian_acc" and result.get("cluster_features"):
            method = CLUSTERER_NAMES.get(result.get("cluster_method", "kmeans"), result.get("cluster_method"))
            name = f"Hungarian acc ({method}, k = #classes, on {result['cluster_features']})"
        lines.append(f"| {name} | {result[key]:.3f} |")
        if key == "hungarian_acc":
            for method, acc in result.get("hungarian_by_method", {}).items():
                if method != result.get("cluster_method", "kmeans"):
                    lines.append(f"| Hungarian acc, {CLUSTERER_NAMES.get(method, method)} on the same codes | {acc:.3f} |")
    k = result["paper_k"]
    lines.append(f"| majority-vote acc at K = {k} (paper's metric, rises with K) | {result[f'majority_vote_acc_k{k}']:.3f} |")
    return "\n".join(lines)
