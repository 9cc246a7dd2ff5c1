"""``python -m cae_lib benchmark``: every method of the comparison table, over several seeds.

``python -m cae_lib benchmark --dataset pneumoniamnist --seeds 3`` runs every row of
:mod:`cae_lib.comparison` (k-means on pixels and on PCA, the AE / VAE / contrastive / CAE
ablations, and the supervised same-backbone and ResNet-18 ceilings).

Each (method, seed) runs in a fresh Python process (:mod:`cae_lib.commands.benchmark_worker`) so
that its peak memory is its own. ``OUT`` is a new folder ``runs/<dataset>-benchmark-<time>`` by
default; the committed ``benchmarks/results/`` is written only with ``--publish``, and only by a
complete run (every method, at least as many seeds as the committed table) unless ``--overwrite``
says otherwise. Result files already in ``OUT`` are never replaced without ``--overwrite``.
The results go to ``OUT/<dataset>_benchmark.json``
(every run: settings, metrics, seconds, peak memory), ``OUT/<dataset>_benchmark.md`` (mean ± sd
table) and ``OUT/<dataset>_benchmark.png``. The label-efficiency experiment (part of the ``cae`` and
``same_backbone`` runs) is plotted in ``OUT/<dataset>_label_efficiency.png``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import torch

from cae_lib import plots
from cae_lib.commands.options import (
    add_data_args,
    add_overwrite_arg,
    add_progress_arg,
    positive_int,
)
from cae_lib.commands.outputs import check_output_dir, warn
from cae_lib.comparison import (
    BENCHMARK_DIR,
    LABEL_FRACTIONS,
    METHODS,
    REFERENCES,
    TABLE_METRICS,
    comparison_table,
    headline_rows,
    label_efficiency_curves,
    summarize_runs,
)
from cae_lib.data import load_dataset
from cae_lib.data.provenance import normalize_reference
from cae_lib.experiment import RECIPES
from cae_lib.files import save_figure, write_json, write_text
from cae_lib.run_folder import default_run_dir
from cae_lib.utils import progress_bar

HELP = "every method of the comparison table over several seeds"


def run_one_isolated(method: str, dataset: str, seed: int, data_dir: str | None, epochs: int | None, size: int = 28,
                     recipe: str = "default") -> dict[str, Any]:
    """:func:`~cae_lib.comparison.run_one` in a fresh Python process, so peak memory is measured per run."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "cae_lib.commands.benchmark_worker", "--one", method, "--dataset", dataset, "--seed", str(seed),
               "--size", str(size), "--recipe", recipe, "--json", str(out)]
        if data_dir:
            cmd += ["--data-dir", str(data_dir)]
        if epochs is not None:
            cmd += ["--epochs", str(epochs)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"benchmark run {method} (seed {seed}) failed:\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def run_benchmark(
    dataset: str = "pneumoniamnist",
    seeds: int = 3,
    out: str | Path | None = None,
    data_dir: str | None = None,
    methods: Sequence[str] | None = None,
    epochs: int | None = None,
    progress: bool = True,
    size: int = 28,
    reuse: str | Path | None = None,
    recipe: str = "default",
) -> dict[str, Any]:
    """Run the table at ``size`` px and write JSON, Markdown and PNG files under ``out``; return the summary.

    ``reuse``: an earlier results JSON whose runs of the methods *not* in ``methods`` join the
    table unchanged (for rows that a change cannot affect, such as the supervised baselines after
    a change to the CAE's training); the table says which rows were reused and from when.

    ``recipe`` is the training budget of the CAE and its ablations (:data:`cae_lib.experiment.RECIPES`); every
    run records it. Files are named after the dataset, with ``_<size>px`` added above 28 px and
    ``_long`` for the long recipe. ``out`` defaults to
    a new folder ``runs/<dataset>-benchmark-<time>``; the committed results are
    :data:`~cae_lib.comparison.BENCHMARK_DIR`.
    """
    matplotlib.use("Agg")
    methods = list(methods or METHODS)
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from {list(METHODS)}")
    if int(seeds) < 1:
        raise ValueError(f"seeds must be at least 1 (the table reports mean ± sd over seeds), got {seeds}")
    test = load_dataset(dataset, split="test", size=size, data_dir=data_dir)
    if recipe not in RECIPES:
        raise ValueError(f"unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    name = (test.name if size == 28 else f"{test.name}_{size}px") + ("" if recipe == "default" else f"_{recipe}")
    out = Path(out) if out is not None else default_run_dir(dataset, "benchmark")
    floor = float(np.bincount(test.labels).max() / len(test.labels))
    jobs = [(m, s) for m in methods for s in range(seeds)]
    runs, reused_from = reused_runs(reuse, methods, seeds) if reuse else ([], None)
    bar = progress_bar(jobs, desc=f"benchmark {name}", disable=not progress)
    partial = out / f"{name}_benchmark.partial.json"
    for method, seed in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(f"{method} seed {seed}")
        runs.append(run_one_isolated(method, dataset, seed, data_dir, epochs, size, recipe))
        write_json(partial, runs)  # nothing is lost if a long run is interrupted
        if not progress:  # without the bar (logs), a line per run
            print(f"{METHODS[method]}, seed {seed}: done in {runs[-1].get('seconds', 0.0):.1f} s", flush=True)
        for message in runs[-1].get("warnings", []):  # kept in the JSON too
            warn(f"{METHODS[method]}, seed {seed}: {message}")
    runs.sort(key=lambda r: list(METHODS).index(r["key"]) if r.get("key") in METHODS else len(METHODS))
    rows = summarize_runs(runs, TABLE_METRICS)
    table = comparison_table(rows, floor, name, len(test.labels), seeds)
    if reused_from:
        table += f"\n\nRows reused unchanged from {reused_from}: " + ", ".join(sorted({r['method'] for r in runs if r.get('reused')})) + "."
    meta = {
        "dataset": name,
        "seeds": seeds,
        "recipe": recipe,
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}",
        "python": platform.python_version(),
        "accelerator": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none (CPU)",
        "majority_floor": floor,
        "references": REFERENCES.get(name, {}),
    }
    if reused_from:
        meta["reused_from"] = reused_from
    result: dict[str, Any] = {"meta": meta, "summary": rows, "runs": runs}
    curves = label_efficiency_curves(runs)
    if curves:
        result["label_efficiency"] = {str(k): {str(f): v for f, v in c.items()} for k, c in curves.items()}
        spread = f"mean ± sd over {seeds} seeds" if seeds > 1 else "one seed"
        lines = ["", f"Label efficiency (test accuracy, {spread}; stratified label subsets):", "",
                 "| labels used | " + " | ".join(curves) + " |", "|---|" + "---|" * len(curves)]
        for f in LABEL_FRACTIONS:
            lines.append(f"| {f:.0%} | " + " | ".join(f"{c[f][0]:.3f}" + (f" ± {c[f][1]:.3f}" if seeds > 1 else "") for c in curves.values()) + " |")
        table += "\n" + "\n".join(lines)
        out.mkdir(parents=True, exist_ok=True)
        points = curves if seeds > 1 else {k: {f: (m, None) for f, (m, _) in c.items()} for k, c in curves.items()}  # one seed: no error bars
        fig = plots.label_efficiency(points, floor=floor)
        save_figure(fig, out / f"{name}_label_efficiency.png", dpi=110, bbox_inches="tight")
        plt.close(fig)
    write_json(out / f"{name}_benchmark.json", result)
    partial.unlink(missing_ok=True)
    write_text(out / f"{name}_benchmark.md", f"# Benchmark: {name}\n\nMachine: {meta['machine']}; accelerator: {meta['accelerator']}; date {meta['date']}.\n\n{table}\n")
    bars = headline_rows(rows) if seeds > 1 else [{**r, "accuracy_sd": None} for r in headline_rows(rows)]
    fig = plots.results_bar_chart(bars, metric="accuracy", floor=floor, references=meta["references"])
    fig.axes[0].set_title(f"{name}: test accuracy (unsupervised: Hungarian-matched k-means; supervised: classifier)")
    out.mkdir(parents=True, exist_ok=True)
    save_figure(fig, out / f"{name}_benchmark.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(table)
    print(f"\nresults written to {out}/{name}_benchmark.{{json,md,png}}")
    return result


def reused_runs(path: str | Path, methods: Sequence[str], seeds: int) -> tuple[list[dict[str, Any]], str]:
    """The runs in the results file ``path`` of every method not in ``methods`` (seeds below ``seeds``), marked ``reused``."""
    try:
        earlier = json.loads(Path(path).read_text())
        picked = [r for r in earlier["runs"] if r.get("key") not in methods and int(r.get("seed", 0)) < seeds]
        when = f"{Path(path).name} ({earlier['meta']['date']})"
        if picked and all(r.get("reused") for r in picked) and earlier["meta"].get("reused_from"):
            when = earlier["meta"]["reused_from"]  # reused there too: keep where (and when) they ran
        runs = [dict(r, reused=True) for r in picked]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ValueError(f"--reuse {path}: not a benchmark results JSON ({e}); give the <dataset>_benchmark.json of an earlier run") from e
    return runs, when


def result_files(name: str) -> tuple[str, ...]:
    """The files a benchmark named ``name`` (the dataset, plus ``_<size>px`` above 28 px) writes into its folder."""
    return tuple(f"{name}_{suffix}" for suffix in ("benchmark.json", "benchmark.md", "benchmark.png", "label_efficiency.png", "benchmark.partial.json"))


def table_name(dataset: str, size: int = 28, recipe: str = "default") -> str:
    """The name :func:`run_benchmark` gives the files of ``dataset`` at ``size`` px with ``recipe`` (without loading it)."""
    name = Path(normalize_reference(dataset)).name
    name = name[:-4] if name.lower().endswith(".npz") else name
    return (name if size == 28 else f"{name}_{size}px") + ("" if recipe == "default" else f"_{recipe}")


def check_benchmark_out(out: Path, name: str, methods: Sequence[str], seeds: int, publish: bool, overwrite: bool, reused: Sequence[str] = ()) -> Path:
    """Refuse, before any run, to replace result files, or to publish a partial table, without ``overwrite``."""
    check_output_dir(out, "--out")
    existing = [f for f in result_files(name) if (out / f).exists()]
    if existing and not publish and not overwrite:
        raise ValueError(
            f"{out} already holds results for {name} ({', '.join(existing)}). Pass --overwrite to replace them, or "
            "choose another --out (leave it out for a new folder)."
        )
    if publish and not overwrite:
        committed = out / f"{name}_benchmark.json"
        try:
            committed_seeds = int(json.loads(committed.read_text())["meta"]["seeds"]) if committed.exists() else 0
        except (OSError, ValueError, KeyError, TypeError):
            committed_seeds = 0
        missing = [m for m in METHODS if m not in methods and m not in reused]
        if missing or seeds < committed_seeds:
            raise ValueError(
                f"--publish with a partial run (missing methods: {', '.join(missing) or 'none'}; {seeds} seed(s) where the "
                f"committed table has {committed_seeds}) would replace the full table in {out}. Run every method with "
                f"--seeds {max(committed_seeds, 3)}, drop --publish, or pass --overwrite if you mean it."
            )
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_args(p)
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per method (the table shows mean ± sd over them)")
    p.add_argument("--out", default=None, help="results folder (default: a new folder runs/<dataset>-benchmark-<date-time>)")
    p.add_argument("--publish", action="store_true",
                   help=f"write into the committed results folder {BENCHMARK_DIR.parent.name}/{BENCHMARK_DIR.name}/ "
                        "(a complete run only, unless --overwrite)")
    p.add_argument("--methods", nargs="+", default=None, choices=list(METHODS), metavar="METHOD",
                   help="the rows to run (default: all): " + ", ".join(METHODS))
    p.add_argument("--recipe", choices=list(RECIPES), default="default",
                   help="the training budget of the CAE and its ablations: default, or long (ten times the steps; "
                        "results in <dataset>_long_benchmark.*)")
    p.add_argument("--epochs", type=positive_int, default=None, help="override the CAE epochs (default: the recipe's)")
    p.add_argument("--reuse", default=None, metavar="JSON",
                   help="an earlier <dataset>_benchmark.json: its runs of the methods not given in --methods join the table unchanged (default: none, every row runs)")
    add_overwrite_arg(p, "result files already in --out")
    add_progress_arg(p)


def run(args: argparse.Namespace) -> int:
    if args.publish and args.out:
        raise ValueError("--publish writes into the committed results folder; give --publish or --out, not both")
    methods = list(args.methods or METHODS)
    out = BENCHMARK_DIR if args.publish else Path(args.out) if args.out else default_run_dir(args.dataset, "benchmark")
    reused: list[str] = []
    if args.reuse:
        reused = sorted({r["key"] for r in reused_runs(args.reuse, methods, args.seeds)[0]})
    check_benchmark_out(out, table_name(args.dataset, args.size, args.recipe), methods, args.seeds, args.publish, args.overwrite, reused)
    run_benchmark(
        dataset=args.dataset,
        seeds=args.seeds,
        out=out,
        data_dir=args.data_dir,
        methods=methods,
        epochs=args.epochs,
        progress=not args.no_progress,
        size=args.size,
        reuse=args.reuse,
        recipe=args.recipe,
    )
    return 0
