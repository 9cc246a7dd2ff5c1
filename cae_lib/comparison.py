"""The comparison table: its methods, one run of a row, reference numbers and Markdown tables.

The ``benchmark`` command (:mod:`cae_lib.commands.benchmark`) runs every row over several seeds;
the ``demo`` command and notebook 05 use the pixel baselines and the one-seed table. The rows:

============================  ==============================================================
row                           what it is
============================  ==============================================================
``raw_kmeans``                k-means on raw pixels (no learning at all)
``pca_kmeans``                PCA (50 components) + k-means
``ae``                        plain autoencoder + spectral clustering (contrastive weight 0)
``vae``                       VAE + spectral clustering
``contrastive``               contrastive only + spectral clustering (reconstruction weight 0)
``cae``                       the contrastive autoencoder + spectral clustering on the kNN graph (the paper's model used k-means)
``same_backbone``             the CAE encoder + linear head, trained *with* labels (ceiling)
``resnet18``                  torchvision ResNet-18 trained with labels (ImageNet transfer when
                              the weights are available, else honestly labelled "from scratch")
============================  ==============================================================

The label-efficiency experiment (class-balanced linear probe on each CAE seed's codes vs the
same-backbone supervised model, both with 1 %, 10 % and 100 % of the train labels) is part of the
``cae`` and ``same_backbone`` runs.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sklearn.decomposition import PCA

from cae_lib.baselines import SupervisedConfig, run_baseline
from cae_lib.batches import images_of, images_to_float
from cae_lib.config import preset
from cae_lib.embed import embed
from cae_lib.evaluate import (
    EvalConfig,
    evaluate_embeddings,
    evaluate_model,
    load_splits,
)
from cae_lib.experiment import TrainingWarning, apply_recipe, config_for_data, train_cae
from cae_lib.machine import peak_memory_mb
from cae_lib.probes import label_subset, linear_probe
from cae_lib.tables import markdown_table

# The committed benchmark results (``benchmarks/results`` beside the package).
BENCHMARK_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"

METHODS: dict[str, str] = {
    "raw_kmeans": "k-means on raw pixels",
    "pca_kmeans": "PCA (50) + k-means",
    "ae": "AE + spectral (contrastive weight 0)",
    "vae": "VAE + spectral",
    "contrastive": "Contrastive only + spectral (recon weight 0)",
    "cae": "CAE + spectral (ours)",
    "same_backbone": "Same-backbone supervised (CAE encoder + linear, all labels)",
    "resnet18": "ResNet-18 supervised",
}
UNSUPERVISED = ("raw_kmeans", "pca_kmeans", "ae", "vae", "contrastive", "cae")
LABEL_FRACTIONS = (0.01, 0.1, 1.0)

# Published reference numbers (test accuracy), quoted beside our table.
REFERENCES = {
    "pneumoniamnist": {"MedMNIST v2 ResNet-18 (28), supervised": 0.854, "VAESim kNN (Ferrante et al.)": 0.776},
    "breastmnist": {"MedMNIST v2 ResNet-18 (28), supervised": 0.863},
}

TABLE_METRICS = ["hungarian_acc", "nmi", "ari", "knn_acc", "linear_acc", "linear_unweighted_acc", "majority_vote_acc_k7", "supervised_acc", "seconds", "peak_memory_mb"]


def pixel_eval_config() -> EvalConfig:
    """The evaluation of the pixel and PCA baselines, "k-means on ...": only k-means is fitted on them (a
    Gaussian mixture on 784 or 2,352 raw pixels alone takes most of a minute); the other clusterers are
    compared on the codes of the models."""
    return EvalConfig(method="kmeans", compare_methods=())


def _pixels(data: Any) -> np.ndarray:
    """Flattened pixels in [0, 1]: (N, C*H*W) float32, the model's input flattened."""
    return images_to_float(images_of(data)).reshape(len(data.images), -1).numpy()


def run_one(
    method: str, dataset: str, seed: int, data_dir: str | None = None, epochs: int | None = None,
    progress: bool = False, size: int = 28, recipe: str = "default",
) -> dict[str, Any]:
    """Run one row of the table for one seed at ``size`` px, in this process. Returns metrics + settings + timing.

    ``recipe`` (:data:`cae_lib.experiment.RECIPES`) is the training budget of the AE / VAE / contrastive /
    CAE rows; every row records it (``"recipe"``), the baselines included.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    splits = load_splits(dataset, data_dir, size)
    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    t0 = time.perf_counter()
    result: dict[str, Any] = {"method": METHODS[method], "key": method, "dataset": splits["train"].name, "size": size, "seed": seed,
                              "recipe": recipe}
    if method in ("raw_kmeans", "pca_kmeans"):
        feats = {s: _pixels(d) for s, d in splits.items()}
        if method == "pca_kmeans":
            pca = PCA(n_components=50, random_state=seed).fit(feats["train"])
            feats = {s: pca.transform(f).astype(np.float32) for s, f in feats.items()}
        result.update(evaluate_embeddings(feats, y, {"pixels" if method == "raw_kmeans" else "pca": feats}, pixel_eval_config(), seed=seed))
        result["settings"] = {"pca_components": 50} if method == "pca_kmeans" else {}
    elif method in ("ae", "vae", "contrastive", "cae"):
        cfg = config_for_data(apply_recipe(preset(method, dataset=dataset, size=size), recipe), splits["train"])
        cfg.train.seed = seed
        if epochs is not None:
            cfg.train.epochs = epochs
        with warnings.catch_warnings(record=True) as caught:  # recorded in the row, e.g. NT-Xent ended at chance
            warnings.simplefilter("always", TrainingWarning)
            model, history, _ = train_cae(cfg, splits["train"], progress=progress)
        train_seconds = time.perf_counter() - t0
        result.update(evaluate_model(model, splits, seed=seed, has_projection=cfg.loss.contrastive_weight > 0))
        if method == "cae":
            result["label_efficiency"] = _probe_label_efficiency(model, splits, seed)
        result["train_seconds"] = train_seconds
        result["train_images_per_sec"] = len(splits["train"]) * len(history) / train_seconds
        result["settings"] = cfg.to_dict()
        result["final_epoch"] = history[-1]
        result["warnings"] = [str(w.message) for w in caught if issubclass(w.category, TrainingWarning)]
    else:
        scfg = SupervisedConfig.for_model(method, seed=seed)
        res = run_baseline(method, splits["train"], splits["val"], splits["test"], scfg, progress=progress)
        result.update({k: v for k, v in res.items() if k not in ("method",)})
        result["method"] = f"{res['method']}, all labels" if method == "resnet18" else METHODS[method]
        result["supervised_acc"] = res["accuracy"]
        result["settings"] = scfg.to_dict()
        result.pop("history", None)
        if method == "same_backbone":
            result["label_efficiency"] = _supervised_label_efficiency(splits, seed, scfg, res["accuracy"], progress)
    result["seconds"] = time.perf_counter() - t0
    result["peak_memory_mb"] = peak_memory_mb()
    return result


def _probe_label_efficiency(model: Any, splits: dict[str, Any], seed: int) -> dict[str, float]:
    """Class-balanced linear probe on frozen CAE codes, trained on a stratified fraction of the train labels."""
    z_train, z_test = embed(model, splits["train"]), embed(model, splits["test"])
    out = {}
    for fraction in LABEL_FRACTIONS:
        idx = label_subset(splits["train"].labels, fraction, seed=seed)
        probe = linear_probe(z_train[idx], splits["train"].labels[idx], z_test, splits["test"].labels, seed=seed, class_weight="balanced")
        out[str(fraction)] = probe["accuracy"]
    return out


def _supervised_label_efficiency(splits: dict[str, Any], seed: int, full_cfg: Any, full_acc: float, progress: bool) -> dict[str, float]:
    """The same-backbone classifier trained on the same label fractions, with the full run's number of steps (capped)."""
    n_full = len(splits["train"])
    full_steps = full_cfg.epochs * math.ceil(n_full / full_cfg.batch_size)
    out = {"1.0": full_acc}
    for fraction in LABEL_FRACTIONS:
        if fraction >= 1.0:
            continue
        idx = label_subset(splits["train"].labels, fraction, seed=seed)
        epochs = min(200, math.ceil(full_steps / math.ceil(len(idx) / full_cfg.batch_size)))
        cfg = dataclasses.replace(full_cfg, epochs=epochs)
        res = run_baseline("same_backbone", splits["train"], splits["val"], splits["test"], cfg, label_indices=idx, progress=progress)
        out[str(fraction)] = res["accuracy"]
    return out


def pixel_baselines(splits: dict[str, Any], seed: int = 0) -> dict[str, dict[str, Any]]:
    """k-means on raw pixels and on 50 PCA components, with the same protocol as the CAE."""
    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    pixels = {s: _pixels(d) for s, d in splits.items()}
    pca = PCA(n_components=min(50, pixels["train"].shape[1]), random_state=seed).fit(pixels["train"])
    pcs = {s: pca.transform(p).astype(np.float32) for s, p in pixels.items()}
    return {
        "k-means on raw pixels": evaluate_embeddings(pixels, y, {"pixels": pixels}, pixel_eval_config(), seed),
        "PCA (50) + k-means": evaluate_embeddings(pcs, y, {"pca": pcs}, pixel_eval_config(), seed),
    }


def results_table(rows: dict[str, dict[str, Any]], floor: float, n_test: int, dataset: str) -> str:
    """Markdown table: one row per method, the floor beside every accuracy."""
    k = next(iter(rows.values()))["paper_k"]
    lines = [
        f"**{dataset}**, {'official ' if dataset != 'digits' else ''}test split (n = {n_test}), one run (seed 0). Majority-class floor: **{floor:.3f}**.",
        "",
        f"| method | Hungarian acc (k = #classes) | NMI | ARI | kNN acc (k = 10) | linear probe (balanced / unweighted) | majority-vote acc (K = {k}) | clustered features |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['hungarian_acc']:.3f} | {r['nmi']:.3f} | {r['ari']:.3f} | {r['knn_acc']:.3f} | {r['linear_acc']:.3f} / {r['linear_unweighted_acc']:.3f} "
            f"| {r[f'majority_vote_acc_k{k}']:.3f} | {r['cluster_features']} |"
        )
    return "\n".join(lines)


def label_efficiency_curves(runs: list[dict[str, Any]]) -> dict[str, dict[float, tuple[float, float]]]:
    """Mean and sd over seeds of the label-efficiency numbers stored in the CAE and same-backbone runs."""
    curves: dict[str, dict[float, tuple[float, float]]] = {}
    for key, name in (("cae", "CAE codes + linear probe (balanced)"), ("same_backbone", "Same-backbone supervised")):
        group = [r["label_efficiency"] for r in runs if r["key"] == key and "label_efficiency" in r]
        if not group:
            continue
        curves[name] = {}
        for f in LABEL_FRACTIONS:
            vals = [g[str(f)] for g in group]
            curves[name][f] = (float(np.mean(vals)), float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0)
    return curves


def summarize_runs(runs: list[dict[str, Any]], metrics: Sequence[str]) -> list[dict[str, Any]]:
    """Group runs by method; mean and sample sd (ddof = 1) of each metric, in METHODS order."""
    rows = []
    order = {k: i for i, k in enumerate(METHODS)}
    for key in sorted({r["key"] for r in runs}, key=order.get):
        group = [r for r in runs if r["key"] == key]
        row: dict[str, Any] = {"key": key, "method": group[0]["method"], "n_seeds": len(group)}
        for m in metrics:
            values = [r[m] for r in group if r.get(m) is not None]
            if values:
                row[f"{m}_mean"] = float(np.mean(values))
                row[f"{m}_sd"] = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        rows.append(row)
    return rows


#: The columns of the comparison table: (header, metric key, decimals).
TABLE_COLUMNS = (("Hungarian acc (k = #classes)", "hungarian_acc", 3), ("NMI", "nmi", 3), ("ARI", "ari", 3),
                 ("kNN acc (k = 10)", "knn_acc", 3), ("linear probe (balanced)", "linear_acc", 3),
                 ("linear probe (unweighted)", "linear_unweighted_acc", 3), ("majority-vote acc (K = 7)", "majority_vote_acc_k7", 3),
                 ("supervised test acc", "supervised_acc", 3), ("seconds", "seconds", 0), ("peak MB", "peak_memory_mb", 0))


def comparison_table(rows: list[dict[str, Any]], floor: float, dataset: str, n_test: int, seeds: int) -> str:
    """The comparison table in Markdown: mean ± sd of every metric per method, with the majority floor above it."""
    def cell(row: dict[str, Any], m: str, digits: int) -> str:
        if f"{m}_mean" not in row:
            return "–"
        if seeds == 1:  # one seed has no spread to show
            return f"{row[f'{m}_mean']:.{digits}f}"
        return f"{row[f'{m}_mean']:.{digits}f} ± {row[f'{m}_sd']:.{digits}f}"

    title = (f"**{dataset}**, official test split (n = {n_test}), "
             + (f"mean ± sd over {seeds} seeds. " if seeds > 1 else "one seed (--seeds 3 gives mean ± sd). ")
             + f"Majority-class floor: **{floor:.3f}**.")
    table = markdown_table([{"method": row["method"], **{head: cell(row, key, d) for head, key, d in TABLE_COLUMNS}} for row in rows])
    return f"{title}\n\n{table}"


def headline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One accuracy per method for the bar chart: Hungarian accuracy (unsupervised) or test accuracy (supervised)."""
    out = []
    for r in rows:
        metric = "hungarian_acc" if r["key"] in UNSUPERVISED else "supervised_acc"
        if f"{metric}_mean" in r:
            out.append({"method": r["method"], "accuracy_mean": r[f"{metric}_mean"], "accuracy_sd": r[f"{metric}_sd"]})
    return out
