"""The comparison table: every method on the same splits, over several seeds.

``python -m cae_lib benchmark --dataset pneumoniamnist --seeds 3`` runs:

============================  ==============================================================
row                           what it is
============================  ==============================================================
``raw_kmeans``                k-means on raw pixels (no learning at all)
``pca_kmeans``                PCA (50 components) + k-means
``ae``                        plain autoencoder + k-means (contrastive weight 0)
``vae``                       VAE + k-means
``contrastive``               contrastive only + k-means (reconstruction weight 0)
``cae``                       the contrastive autoencoder + k-means (the paper's model)
``same_backbone``             the CAE encoder + linear head, trained *with* labels (ceiling)
``resnet18``                  torchvision ResNet-18 trained with labels (ImageNet transfer when
                              the weights are available, else honestly labelled "from scratch")
============================  ==============================================================

Each (method, seed) runs in a fresh Python process so that its peak memory is its own. The
results go to ``OUT/<dataset>_benchmark.json`` (every run: settings, metrics, seconds, peak
memory), ``OUT/<dataset>_benchmark.md`` (mean ± sd table) and ``OUT/<dataset>_benchmark.png``.
The label-efficiency experiment (class-balanced linear probe on each CAE seed's codes vs the
same-backbone supervised model, both with 1 %, 10 % and 100 % of the train labels) is part of the
``cae`` and ``same_backbone`` runs and is plotted in ``OUT/<dataset>_label_efficiency.png``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from cae_lib.utils import peak_memory_mb, progress_bar, write_json, write_text

METHODS: dict[str, str] = {
    "raw_kmeans": "k-means on raw pixels",
    "pca_kmeans": "PCA (50) + k-means",
    "ae": "AE + k-means (contrastive weight 0)",
    "vae": "VAE + k-means",
    "contrastive": "Contrastive only + k-means (recon weight 0)",
    "cae": "CAE + k-means (ours)",
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


def _pixels(data: Any) -> np.ndarray:
    return np.asarray(data.images, dtype=np.float32).reshape(len(data.images), -1) / 255.0


def run_one(method: str, dataset: str, seed: int, data_dir: str | None = None, epochs: int | None = None, progress: bool = False) -> dict[str, Any]:
    """Run one row of the table for one seed, in this process. Returns metrics + settings + timing."""
    from cae_lib.config import preset
    from cae_lib.evaluate import EvalConfig, evaluate_embeddings, evaluate_model, load_splits
    from cae_lib.experiment import build_trainer, config_for_data

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose from {list(METHODS)}")
    splits = load_splits(dataset, data_dir)
    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    t0 = time.perf_counter()
    result: dict[str, Any] = {"method": METHODS[method], "key": method, "dataset": splits["train"].name, "seed": seed}
    if method in ("raw_kmeans", "pca_kmeans"):
        feats = {s: _pixels(d) for s, d in splits.items()}
        if method == "pca_kmeans":
            from sklearn.decomposition import PCA

            pca = PCA(n_components=50, random_state=seed).fit(feats["train"])
            feats = {s: pca.transform(f).astype(np.float32) for s, f in feats.items()}
        result.update(evaluate_embeddings(feats, y, {"pixels" if method == "raw_kmeans" else "pca": feats}, EvalConfig(), seed=seed))
        result["settings"] = {"pca_components": 50} if method == "pca_kmeans" else {}
    elif method in ("ae", "vae", "contrastive", "cae"):
        cfg = config_for_data(preset(method, dataset=dataset), splits["train"])
        cfg.train.seed = seed
        if epochs is not None:
            cfg.train.epochs = epochs
        trainer = build_trainer(cfg, splits["train"], progress=progress)
        history = trainer.fit()
        train_seconds = time.perf_counter() - t0
        result.update(evaluate_model(trainer.model, splits, seed=seed, has_projection=cfg.loss.contrastive_weight > 0))
        if method == "cae":
            result["label_efficiency"] = _probe_label_efficiency(trainer.model, splits, seed)
        result["train_seconds"] = train_seconds
        result["train_images_per_sec"] = len(splits["train"]) * len(history) / train_seconds
        result["settings"] = cfg.to_dict()
        result["final_epoch"] = history[-1]
    else:
        from cae_lib.baselines import SupervisedConfig, run_baseline

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


def run_one_isolated(method: str, dataset: str, seed: int, data_dir: str | None, epochs: int | None) -> dict[str, Any]:
    """:func:`run_one` in a fresh Python process, so peak memory is measured per run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "cae_lib.benchmark", "--one", method, "--dataset", dataset, "--seed", str(seed), "--json", str(out)]
        if data_dir:
            cmd += ["--data-dir", str(data_dir)]
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark run {method} (seed {seed}) failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def _probe_label_efficiency(model: Any, splits: dict[str, Any], seed: int) -> dict[str, float]:
    """Class-balanced linear probe on frozen CAE codes, trained on a stratified fraction of the train labels."""
    from cae_lib.embed import embed
    from cae_lib.probes import label_subset, linear_probe

    z_train, z_test = embed(model, splits["train"]), embed(model, splits["test"])
    out = {}
    for fraction in LABEL_FRACTIONS:
        idx = label_subset(splits["train"].labels, fraction, seed=seed)
        probe = linear_probe(z_train[idx], splits["train"].labels[idx], z_test, splits["test"].labels, seed=seed, class_weight="balanced")
        out[str(fraction)] = probe["accuracy"]
    return out


def _supervised_label_efficiency(splits: dict[str, Any], seed: int, full_cfg: Any, full_acc: float, progress: bool) -> dict[str, float]:
    """The same-backbone classifier trained on the same label fractions, with the full run's number of steps (capped)."""
    import dataclasses
    import math

    from cae_lib.baselines import run_baseline
    from cae_lib.probes import label_subset

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


TABLE_METRICS = ["hungarian_acc", "nmi", "ari", "knn_acc", "linear_acc", "linear_unweighted_acc", "majority_vote_acc_k7", "supervised_acc", "seconds", "peak_memory_mb"]


def markdown_table(rows: list[dict[str, Any]], floor: float, dataset: str, n_test: int, seeds: int) -> str:
    """Mean ± sd table with the majority floor beside the accuracies."""
    def cell(row: dict[str, Any], m: str, digits: int = 3) -> str:
        if f"{m}_mean" not in row:
            return "–"
        return f"{row[f'{m}_mean']:.{digits}f} ± {row[f'{m}_sd']:.{digits}f}"

    head = ("| method | Hungarian acc (k = #classes) | NMI | ARI | kNN acc (k = 10) | linear probe (balanced) | linear probe (unweighted) "
            "| majority-vote acc (K = 7) | supervised test acc | seconds | peak MB |")
    lines = [
        f"**{dataset}**, official test split (n = {n_test}), mean ± sd over {seeds} seeds. "
        f"Majority-class floor: **{floor:.3f}**.",
        "",
        head,
        "|" + "---|" * 11,
    ]
    for row in rows:
        lines.append(
            f"| {row['method']} | {cell(row, 'hungarian_acc')} | {cell(row, 'nmi')} | {cell(row, 'ari')} | {cell(row, 'knn_acc')} "
            f"| {cell(row, 'linear_acc')} | {cell(row, 'linear_unweighted_acc')} | {cell(row, 'majority_vote_acc_k7')} | {cell(row, 'supervised_acc')} "
            f"| {cell(row, 'seconds', 0)} | {cell(row, 'peak_memory_mb', 0)} |"
        )
    return "\n".join(lines)


def headline_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One accuracy per method for the bar chart: Hungarian accuracy (unsupervised) or test accuracy (supervised)."""
    out = []
    for r in rows:
        metric = "hungarian_acc" if r["key"] in UNSUPERVISED else "supervised_acc"
        if f"{metric}_mean" in r:
            out.append({"method": r["method"], "accuracy_mean": r[f"{metric}_mean"], "accuracy_sd": r[f"{metric}_sd"]})
    return out


def run_benchmark(
    dataset: str = "pneumoniamnist",
    seeds: int = 3,
    out: str | Path = "benchmarks/results",
    data_dir: str | None = None,
    methods: Sequence[str] | None = None,
    epochs: int | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the table and write JSON, Markdown and PNG files under ``out``; return the summary."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cae_lib import plots
    from cae_lib.data import load_dataset

    methods = list(methods or METHODS)
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    test = load_dataset(dataset, split="test", data_dir=data_dir)
    name = test.name
    out = Path(out)
    floor = float(np.bincount(test.labels).max() / len(test.labels))
    jobs = [(m, s) for m in methods for s in range(seeds)]
    runs = []
    bar = progress_bar(jobs, desc=f"benchmark {name}", disable=not progress)
    partial = out / f"{name}_benchmark.partial.json"
    for method, seed in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"{method} seed {seed}")
        runs.append(run_one_isolated(method, dataset, seed, data_dir, epochs))
        write_json(partial, runs)  # nothing is lost if a long run is interrupted
    rows = summarize_runs(runs, TABLE_METRICS)
    table = markdown_table(rows, floor, name, len(test.labels), seeds)
    meta = {
        "dataset": name,
        "seeds": seeds,
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {__import__('os').cpu_count()} cores, torch threads {__import__('torch').get_num_threads()}",
        "python": platform.python_version(),
        "accelerator": __import__("torch").cuda.get_device_name(0) if __import__("torch").cuda.is_available() else "none (CPU)",
        "majority_floor": floor,
        "references": REFERENCES.get(name, {}),
    }
    result: dict[str, Any] = {"meta": meta, "summary": rows, "runs": runs}
    curves = label_efficiency_curves(runs)
    if curves:
        result["label_efficiency"] = {str(k): {str(f): v for f, v in c.items()} for k, c in curves.items()}
        lines = ["", f"Label efficiency (test accuracy, mean ± sd over {seeds} seeds; stratified label subsets):", "",
                 "| labels used | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
        for f in LABEL_FRACTIONS:
            lines.append(f"| {f:.0%} | " + " | ".join(f"{c[f][0]:.3f} ± {c[f][1]:.3f}" for c in curves.values()) + " |")
        table += "\n" + "\n".join(lines)
        out.mkdir(parents=True, exist_ok=True)
        fig = plots.label_efficiency(curves, floor=floor)
        fig.savefig(out / f"{name}_label_efficiency.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    write_json(out / f"{name}_benchmark.json", result)
    partial.unlink(missing_ok=True)
    write_text(out / f"{name}_benchmark.md", f"# Benchmark: {name}\n\nMachine: {meta['machine']}; accelerator: {meta['accelerator']}; date {meta['date']}.\n\n{table}\n")
    fig = plots.results_bar_chart(headline_rows(rows), metric="accuracy", floor=floor, references=meta["references"])
    fig.axes[0].set_title(f"{name}: test accuracy (unsupervised: Hungarian-matched k-means; supervised: classifier)")
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}_benchmark.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(table)
    print(f"\nresults written to {out}/{name}_benchmark.{{json,md,png}}")
    return result


def _main_one(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="run one benchmark row (internal; used by run_benchmark)")
    p.add_argument("--one", required=True, choices=list(METHODS))
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--json", required=True)
    a = p.parse_args(argv)
    write_json(a.json, run_one(a.one, a.dataset, a.seed, a.data_dir, a.epochs))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main_one())
