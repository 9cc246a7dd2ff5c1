"""The two training recipes side by side: the CAE at ``--recipe default`` and ``--recipe long``, 3 seeds, test split.

Evaluates (``cae_lib.evaluate.evaluate_checkpoint``, the protocol of ``python -m cae_lib evaluate``)
the run folders ``RUNS/<dataset>-<recipe>-s<seed>`` that ``python -m cae_lib train --dataset D
--seed S [--recipe long]`` wrote (``benchmarks/sweep_clusterers.py`` trains and uses the same
runs), and writes a table of mean ± sd over the seeds, with the majority-class floor beside every
accuracy:

    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/recipes.py --runs runs/sweep_clusterers \\
        --out benchmarks/results/recipes

Writes ``OUT.json`` (every run's metrics and config, with ``"recipe"``) and ``OUT.md``; an existing
file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae_lib.checkpoint import read_checkpoint
from cae_lib.config import CAEConfig
from cae_lib.experiment import recipe_of
from cae_lib.evaluate import CLUSTERER_NAMES, evaluate_checkpoint
from cae_lib.files import write_json, write_text

COLUMNS = [("hungarian_acc", "Hungarian ({method})"), ("kmeans", "Hungarian (k-means)"), ("knn_acc", "kNN (k = 10)"),
           ("linear_acc", "linear (balanced)"), ("linear_unweighted_acc", "linear (plain)")]


def evaluate_runs(runs: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        payload = read_checkpoint(run / "model.pt")
        recipe = recipe_of(CAEConfig.from_dict(payload["config"]))
        metrics = evaluate_checkpoint(run)
        metrics.update(recipe=recipe, run=run.name, train_seconds=payload["extra"].get("train_seconds"))
        rows.append(metrics)
        print(f"{run.name}: {recipe}, Hungarian {metrics['hungarian_acc']:.3f}, kNN {metrics['knn_acc']:.3f}", flush=True)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    method = CLUSTERER_NAMES[rows[0]["cluster_method"]]
    names = [name.format(method=method) for _, name in COLUMNS]
    lines = ["| data set | recipe | seeds | " + " | ".join(names) + " | majority floor | train s (1 core, shared) |",
             "|---|---|---|" + "---|" * len(names) + "---|---|"]
    for dataset, recipe in sorted({(r["dataset"], r["recipe"]) for r in rows}):
        group = [r for r in rows if (r["dataset"], r["recipe"]) == (dataset, recipe)]
        cells = []
        for key, _ in COLUMNS:
            values = [r["hungarian_by_method"]["kmeans"] if key == "kmeans" else r[key] for r in group]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values, ddof=1) if len(values) > 1 else 0:.3f} (worst {min(values):.3f})")
        seconds = np.mean([r["train_seconds"] for r in group])
        lines.append(f"| {dataset} | {recipe} | {len(group)} | " + " | ".join(cells) + f" | {group[0]['majority_floor']:.3f} | {seconds:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="folder of the run folders <dataset>-<recipe>-s<seed>")
    p.add_argument("--out", type=Path, required=True, help="results stem: writes OUT.json and OUT.md")
    p.add_argument("--datasets", nargs="+", default=["pneumoniamnist", "breastmnist"])
    p.add_argument("--overwrite", action="store_true", help="replace OUT.json / OUT.md if they exist")
    args = p.parse_args(argv)
    for path in (args.out.with_suffix(".json"), args.out.with_suffix(".md")):
        if path.exists() and not args.overwrite:
            raise SystemExit(f"{path} exists; pass --overwrite to replace it, or choose another --out")
    torch.set_num_threads(1)
    runs = sorted(r for r in args.runs.iterdir() if (r / "model.pt").is_file() and r.name.rsplit("-", 2)[0] in args.datasets)
    rows = evaluate_runs(runs)
    md = "\n".join([
        "# The two recipes: the CAE at `--recipe default` (160 steps) and `--recipe long` (1,600 steps)", "",
        "Official test split, mean ± sd over seeds 0, 1, 2 (worst seed in brackets); each run trained by "
        "`python -m cae_lib train --dataset D --seed S [--recipe long]` and scored by `python -m cae_lib evaluate`'s protocol. "
        "Training seconds were measured with other jobs sharing the 2 cores (about 40 s on an idle core for the default "
        "recipe on PneumoniaMNIST).", "", table(rows), ""])
    write_json(args.out.with_suffix(".json"), {"runs": rows})
    write_text(args.out.with_suffix(".md"), md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
