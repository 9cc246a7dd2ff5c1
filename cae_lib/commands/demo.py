"""``python -m cae_lib demo`` (``make demo``), the main job: the whole pipeline on one dataset.

1. Load the default dataset: PneumoniaMNIST when it is on disk or can be downloaded, otherwise
   the bundled ``digits`` with a clear notice.
2. Load the matching shipped CAE checkpoint, or train one (about 25 seconds on 2 CPU cores).
3. Cluster the latents (k = number of classes) and evaluate on the official test split, beside
   the raw-pixel and PCA k-means baselines and the majority-class floor; quote the committed
   benchmark table (3 seeds, supervised baselines included) when there is one.
4. Write a report folder: ``metrics.json``, ``report.md``, ``config.json`` and PNG figures
   (training curves, reconstructions, latent maps by label and by cluster, confusion matrix,
   cluster montages, samples). Print the table and where the folder is.

Each step says what it does and how long it took. The report folder may be an earlier report
(``make demo`` twice reuses its model and replaces the report); a folder holding anything else is
refused unless ``--overwrite``, and a folder in use by another demo is refused outright.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from cae_lib import plots
from cae_lib.cluster import subgroup_report
from cae_lib.commands.options import add_data_dir_arg, add_overwrite_arg, add_progress_arg, positive_int
from cae_lib.commands.outputs import OutputError, check_output_dir, step
from cae_lib.comparison import BENCHMARK_DIR, pixel_baselines, results_table
from cae_lib.config import preset
from cae_lib.data import DatasetFallbackWarning, load_dataset
from cae_lib.data.provenance import looks_like_path, normalize_reference
from cae_lib.embed import reconstruct
from cae_lib.evaluate import EvalConfig, evaluate_model, load_splits
from cae_lib.experiment import config_for_data, load_or_train
from cae_lib.run_folder import RunLock, run_contents
from cae_lib.sampling import ClassGMMSampler
from cae_lib.files import save_figure, write_json, write_text

HELP = "the main job: load or train, cluster, evaluate, write a report"
#: What a report folder holds; a folder with nothing else is an earlier report, replaced without asking.
REPORT_FILES = frozenset({"model", "config.json", "metrics.json", "report.md", "training_curves.png", "reconstructions.png",
                          "latent_map.png", "confusion_matrix.png", "cluster_montages.png", "samples.png"})


def resolve_default_dataset(dataset: str | None, data_dir: str | Path | None) -> tuple[str, str | None]:
    """``(dataset, notice or None)``: PneumoniaMNIST if it can be had, else ``digits``.

    ``dataset`` is a registry name, or the absolute path of your own data (found from any folder).
    """
    if dataset is not None:
        return normalize_reference(dataset), None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DatasetFallbackWarning)
        data = load_dataset("pneumoniamnist", split="test", data_dir=data_dir, fallback="digits")
    notice = data.notice or next((str(w.message) for w in caught if issubclass(w.category, DatasetFallbackWarning)), None)
    return data.name, notice


def check_report_dir(out: Path, overwrite: bool = False) -> Path:
    """The report folder must be a folder, writable, and empty or an earlier report (else ``overwrite``)."""
    check_output_dir(out, "--out")
    contents = run_contents(out)
    others = [name for name in contents if name not in REPORT_FILES]
    if others and not overwrite:
        shown = ", ".join(others[:5]) + (", ..." if len(others) > 5 else "")
        raise OutputError(
            f"--out {out} holds files that are not a cae-lib report ({shown}); the demo would mix its report with them. "
            "Choose another folder, or pass --overwrite to write the report there anyway."
        )
    earlier = [name for name in contents if name in REPORT_FILES - {"model"}]
    if earlier:
        print(f"--out {out} holds an earlier demo report: its files ({', '.join(sorted(earlier)[:4])}{', ...' if len(earlier) > 4 else ''}) "
              "will be replaced")
    return out


def _save(fig: Any, path: Path) -> str:
    save_figure(fig, path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path.name


def _figures(out: Path, model: Any, history: list[dict[str, float]], train: Any, test: Any, cae: dict[str, Any],
             assign: dict[str, Any], seed: int) -> dict[str, str]:
    """Write the report's figures into ``out``; return ``{figure: file name}``."""
    figures: dict[str, str] = {}
    names = list(test.class_names)
    if history:
        figures["training_curves"] = _save(plots.training_curves(history), out / "training_curves.png")
    x = test.to_tensor(np.arange(8))
    figures["reconstructions"] = _save(plots.reconstructions(x, reconstruct(model, x)), out / "reconstructions.png")
    z2d, idx = plots.project_2d(assign["features"]["test"] if cae["cluster_features"].startswith("projection") else assign["z"]["test"], "pca", seed=seed)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    plots.latent_map(z2d, test.labels[idx], "test codes (PCA), coloured by true label", ax=axes[0], class_names=names)
    plots.latent_map(z2d, assign["test_clusters"][idx], f"coloured by {EvalConfig().method} cluster", ax=axes[1])
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
    return figures


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
    matplotlib.use("Agg")
    t0 = time.perf_counter()
    out = check_output_dir(out, "--out")
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
    model, history, where = load_or_train(cfg, train, splits["val"], out=out / "model", retrain=retrain, progress=progress)
    print(f"model: {where}")
    cfg.to_json(out / "config.json")

    assign: dict[str, Any] = {}
    n_images = sum(len(d) for d in splits.values())
    with step(f"evaluating the CAE: embedding {n_images} images, {EvalConfig().method} clustering (features: {EvalConfig().cluster_features}), kNN and linear probes"):
        cae = evaluate_model(model, splits, seed=seed, assignments=assign)
    with step("the baselines: k-means on raw pixels and on PCA"):
        rows = {"CAE + spectral (this model)": cae, **pixel_baselines(splits, seed)}
    floor = cae["majority_floor"]
    table = results_table(rows, floor, len(test), name)
    # the committed table is about the official data only (a folder named like it is other data)
    bench = BENCHMARK_DIR / f"{cfg.dataset}_benchmark.md" if not looks_like_path(cfg.dataset) else BENCHMARK_DIR / "none"

    with step("figures: training curves, reconstructions, latent maps, confusion matrix, cluster montages, samples"):
        figures = _figures(out, model, history, train, test, cae, assign, seed)

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


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", default=None,
                   help="a MedMNIST name, 'digits', a folder or an .npz (default: pneumoniamnist if available, else digits)")
    add_data_dir_arg(p)
    p.add_argument("--out", default="report", help="report folder (an earlier report there is replaced)")
    p.add_argument("--epochs", type=positive_int, default=None, help="train for this many epochs (default: the library default)")
    p.add_argument("--retrain", action="store_true", help="train even when a matching checkpoint exists")
    add_overwrite_arg(p, "a --out folder that holds files other than a report")
    add_progress_arg(p)


def run(args: argparse.Namespace) -> int:
    out = check_report_dir(Path(args.out), args.overwrite)
    with RunLock(out):
        run_demo(dataset=args.dataset, out=out, data_dir=args.data_dir, retrain=args.retrain, progress=not args.no_progress, epochs=args.epochs)
    return 0
