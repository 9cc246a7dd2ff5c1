"""The main job (``make demo`` / ``python -m cae_lib demo``): the whole pipeline on one dataset.

1. Load the default dataset: PneumoniaMNIST when it is on disk or can be downloaded, otherwise
   the bundled ``digits`` with a clear notice.
2. Load the matching shipped CAE checkpoint, or train one (about 2 minutes on 2 CPU cores).
3. Cluster the latents (k = number of classes) and evaluate on the official test split, beside
   the raw-pixel and PCA k-means baselines and the majority-class floor; quote the committed
   benchmark table (3 seeds, supervised baselines included) when there is one.
4. Write a report folder: ``metrics.json``, ``report.md``, ``config.json`` and PNG figures
   (training curves, reconstructions, latent maps by label and by cluster, confusion matrix,
   cluster montages, samples). Print the table and where the folder is.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from cae_lib.utils import write_json, write_text

BENCHMARK_DIR = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def resolve_default_dataset(dataset: str | None, data_dir: str | Path | None) -> tuple[str, str | None]:
    """``(dataset name, notice or None)``: PneumoniaMNIST if it can be had, else ``digits``."""
    from cae_lib.data import DatasetFallbackWarning, load_dataset

    if dataset is not None:
        return dataset, None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetFallbackWarning)
        data = load_dataset("pneumoniamnist", split="test", data_dir=data_dir, fallback="digits")
    notice = data.notice or next((str(w.message) for w in caught if issubclass(w.category, DatasetFallbackWarning)), None)
    return data.name, notice


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def pixel_baselines(splits: dict[str, Any], seed: int = 0) -> dict[str, dict[str, Any]]:
    """k-means on raw pixels and on 50 PCA components, with the same protocol as the CAE."""
    from sklearn.decomposition import PCA

    from cae_lib.evaluate import EvalConfig, evaluate_embeddings

    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    pixels = {s: np.asarray(d.images, np.float32).reshape(len(d.images), -1) / 255 for s, d in splits.items()}
    pca = PCA(n_components=min(50, pixels["train"].shape[1]), random_state=seed).fit(pixels["train"])
    pcs = {s: pca.transform(p).astype(np.float32) for s, p in pixels.items()}
    return {
        "k-means on raw pixels": evaluate_embeddings(pixels, y, {"pixels": pixels}, EvalConfig(), seed),
        "PCA (50) + k-means": evaluate_embeddings(pcs, y, {"pca": pcs}, EvalConfig(), seed),
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


def run_demo(
    dataset: str | None = None,
    out: str | Path = "report",
    data_dir: str | Path | None = None,
    retrain: bool = False,
    progress: bool = True,
    epochs: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the main job and write the report folder; returns the metrics dict."""
    import matplotlib

    matplotlib.use("Agg")

    from cae_lib import plots
    from cae_lib.cluster import subgroup_report
    from cae_lib.config import preset
    from cae_lib.embed import reconstruct
    from cae_lib.evaluate import evaluate_model, load_splits
    from cae_lib.experiment import config_for_data, load_or_train
    from cae_lib.sampling import ClassGMMSampler

    t0 = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    name, notice = resolve_default_dataset(dataset, data_dir)
    if notice:
        print(f"NOTICE: {notice}")
    splits = load_splits(name, data_dir)
    train, test = splits["train"], splits["test"]
    name = train.name
    print(f"dataset: {name} ({len(train)} train / {len(splits['val'])} val / {len(test)} test images, {train.n_classes} classes)")

    cfg = config_for_data(preset("cae", dataset=name), train)
    cfg.train.seed = seed
    if epochs is not None:
        cfg.train.epochs = epochs
    model, history, where = load_or_train(cfg, out=out / "model", data_dir=data_dir, retrain=retrain, progress=progress)
    print(f"model: {where}")
    cfg.to_json(out / "config.json")

    assign: dict[str, Any] = {}
    cae = evaluate_model(model, splits, seed=seed, assignments=assign)
    rows = {"CAE + k-means (this model)": cae, **pixel_baselines(splits, seed)}
    floor = cae["majority_floor"]
    table = results_table(rows, floor, len(test), name)
    bench = BENCHMARK_DIR / f"{name}_benchmark.md"
    figures: dict[str, str] = {}
    names = list(test.class_names)

    if history:
        figures["training_curves"] = _save(plots.training_curves(history), out / "training_curves.png")
    x = test.to_tensor(np.arange(8))
    figures["reconstructions"] = _save(plots.reconstructions(x, reconstruct(model, x)), out / "reconstructions.png")
    z2d, idx = plots.project_2d(assign["features"]["test"] if cae["cluster_features"].startswith("projection") else assign["z"]["test"], "pca", seed=seed)
    fig, axes = matplotlib.pyplot.subplots(1, 2, figsize=(11, 4.5))
    plots.latent_map(z2d, test.labels[idx], "test codes (PCA), coloured by true label", ax=axes[0], class_names=names)
    plots.latent_map(z2d, assign["test_clusters"][idx], "coloured by k-means cluster", ax=axes[1])
    figures["latent_map"] = _save(fig, out / "latent_map.png")
    figures["confusion_matrix"] = _save(plots.confusion_matrix_plot(test.labels, assign["test_clusters"], class_names=names), out / "confusion_matrix.png")
    pre = cae["cluster_features"].split("/")[1]
    report = subgroup_report(assign["features"]["test"], test.labels, k=train.n_classes, images=test.images, n_typical=8,
                             preprocess=None if pre == "none" else pre, seed=seed)
    figures["cluster_montages"] = _save(plots.subgroup_montages(test.images, report, class_names=names), out / "cluster_montages.png")
    sampler = ClassGMMSampler().fit_from_model(model, train)
    per_class = max(1, 16 // train.n_classes)
    imgs, titles = [], []
    for c in range(train.n_classes):
        s = sampler.sample(model, per_class, label=c, seed=seed)
        imgs.append(s.images)
        titles += [names[c][:10]] * per_class
    figures["samples"] = _save(plots.image_grid(np.concatenate(imgs), nrow=per_class if train.n_classes <= 4 else 8, titles=titles), out / "samples.png")

    metrics = {"dataset": name, "notice": notice, "model": where, "results": rows, "seconds": time.perf_counter() - t0, "figures": figures}
    write_json(out / "metrics.json", metrics)
    md = [f"# cae-lib report: {name}", ""]
    if notice:
        md += [f"> NOTICE: {notice}", ""]
    md += [f"Model: {where}. Config: `config.json`.", "", table, ""]
    if bench.exists():
        md += [f"The full comparison over 3 seeds, supervised baselines included, is in `{bench.relative_to(BENCHMARK_DIR.parents[1])}`.", ""]
    md += ["## Figures", ""] + [f"![{k}]({v})" for k, v in figures.items()]
    write_text(out / "report.md", "\n".join(md) + "\n")
    print()
    print(table)
    if bench.exists():
        print(f"\nFull 3-seed comparison with the supervised baselines: {bench}")
    print(f"\nreport folder: {out.resolve()}  ({len(figures)} figures, metrics.json, report.md) in {metrics['seconds']:.0f} s")
    return metrics
