"""Stage 2 of the clusterer sweep: how many neighbours the spectral clusterer's kNN graph joins, on validation splits only.

Stage 1 (``benchmarks/sweep_clusterers.py``) chose spectral clustering on the projection h, as it
is (``projection/none``), with the neighbour count it was written with, 10. The neighbour count
sets how far the graph reaches: too few and a class falls apart into islands, too many and the
two classes' neighbourhoods merge. It was never tuned, so this stage asks one question, on the
same 12 runs and their cached train / val codes (``RUNS/codes/``), with this rule written and
committed before the stage ran:

**Candidates.** Spectral clustering on ``projection/none`` with ``n_neighbors`` in
{5, 10, 15, 20, 30, 50} (10 is today's default); the same value builds the graph and casts the
kNN vote that assigns new points. k-means on ``projection/none`` is scored beside them, as the
reference of stage 1.

**The rule.**

1. *Eligible*: in each of the four groups (PneumoniaMNIST and BreastMNIST x default and long
   recipe), the candidate's mean validation Hungarian accuracy over the 3 seeds is at least
   k-means's on the same codes, and fit + predict takes at most 10 s on one core on PneumoniaMNIST.
2. *Choice*: the eligible candidate with the highest mean over the four groups of the group means.
   The default moves away from 10 only if that mean beats 10's by more than 0.005 (the BreastMNIST
   validation split has 78 images, one image is 0.013 of a group mean); otherwise it stays 10.

The post-hoc look (``--posthoc-test``), run only after the choice, scores every candidate on the
official test split and on the 3 held-out ``digits`` runs; it chooses nothing.

    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/sweep_neighbours.py --runs runs/sweep_clusterers
    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/sweep_neighbours.py --runs runs/sweep_clusterers --posthoc-test

Writes ``RUNS/sweep_neighbours{,_test}.{jsonl,md}``; the committed copies are in ``benchmarks/results/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sweep_clusterers as stage1  # noqa: E402  (the runs, their cached codes and the table of stage 1)

from cae_lib.cluster import LatentClusterer  # noqa: E402
from cae_lib.metrics import hungarian_accuracy, majority_class_floor  # noqa: E402

NEIGHBOURS = (5, 10, 15, 20, 30, 50)
DEFAULT = 10
MARGIN = 0.005
REFERENCE = ("kmeans", "projection/none")
CANDIDATES = [REFERENCE] + [(f"spectral, {n} neighbours", "projection/none") for n in NEIGHBOURS]


def score(codes: dict[str, np.ndarray], candidate: tuple[str, str], split: str, seed: int) -> tuple[float, float]:
    """``(Hungarian accuracy on split, seconds to fit on train and predict split)``."""
    k = len(np.unique(codes["y_train"]))
    n = int(candidate[0].split(", ")[1].split()[0]) if candidate[0].startswith("spectral") else None
    start = time.perf_counter()
    clusterer = LatentClusterer(k, "spectral" if n else "kmeans", None, seed=seed, n_neighbors=n).fit(codes["projection_train"])
    predicted = clusterer.predict(codes[f"projection_{split}"])
    return hungarian_accuracy(codes[f"y_{split}"], predicted), time.perf_counter() - start


def choose(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], dict[tuple[str, str], dict[str, Any]]]:
    """The rule of the module docstring."""
    scores = stage1.group_means(rows, "val_hungarian_acc")
    seconds = stage1.group_means([r for r in rows if r["dataset"] == "pneumoniamnist"], "seconds")
    groups = sorted(scores[REFERENCE])
    reference = {g: float(np.mean(scores[REFERENCE][g])) for g in groups}
    summary = {}
    for cand, per in scores.items():
        means = {g: float(np.mean(per[g])) for g in groups}
        t = float(np.mean([s for v in seconds[cand].values() for s in v]))
        summary[cand] = {"means": means, "mean": float(np.mean(list(means.values()))), "worst": float(min(min(per[g]) for g in groups)),
                         "seconds": t, "eligible": cand != REFERENCE and all(means[g] >= reference[g] - 1e-12 for g in groups) and t <= 10.0}
    default = (f"spectral, {DEFAULT} neighbours", "projection/none")
    eligible = [c for c in summary if summary[c]["eligible"]]
    best = max(eligible, key=lambda c: summary[c]["mean"]) if eligible else default
    chosen = best if summary[best]["mean"] > summary[default]["mean"] + MARGIN else default
    return chosen, summary


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="folder of the run folders <dataset>-<recipe>-s<seed> (stage 1's)")
    p.add_argument("--posthoc-test", action="store_true", help="after the choice: every candidate on the test split")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    split = "test" if args.posthoc_test else "val"
    stem = args.runs / ("sweep_neighbours_test" if args.posthoc_test else "sweep_neighbours")
    runs = sorted(r for r in args.runs.iterdir() if (r / "model.pt").is_file() and (split == "test" or not r.name.startswith("digits")))
    rows = []
    for run in runs:
        dataset, recipe, seed = stage1.run_name(run)
        codes = stage1.codes_of(run, args.runs / "codes", ("train", split))
        for cand in CANDIDATES:
            acc, seconds = score(codes, cand, split, seed)
            rows.append({"dataset": dataset, "recipe": recipe, "seed": seed, "method": cand[0], "features": cand[1],
                         f"{split}_hungarian_acc": acc, "seconds": seconds, "floor": majority_class_floor(codes[f"y_{split}"])})
            print(f"{run.name:28s} {cand[0]:26s} {acc:.3f} ({seconds:.1f} s)", flush=True)
    stem.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    floors = {(r["dataset"], r["recipe"]): r["floor"] for r in rows}
    if args.posthoc_test:
        summary = {c: {"means": {g: float(np.mean(v)) for g, v in per.items()}, "mean": float(np.mean([np.mean(v) for v in per.values()])),
                       "worst": float(min(min(v) for v in per.values())), "seconds": 0.0}
                   for c, per in stage1.group_means(rows, "test_hungarian_acc").items()}
        lines = ["# Spectral clustering's neighbour count on the official test split (post-hoc: it chose nothing)", "",
                 f"{len(runs)} runs (stage 1's 12, and 3 on the bundled digits, which no choice saw); Hungarian accuracy "
                 "on the test split, mean over seeds per group.", "", *stage1.table(summary, None, split)]
    else:
        chosen, summary = choose(rows)
        lines = ["# Spectral clustering's neighbour count: validation split only", "",
                 f"{len(runs)} runs; Hungarian accuracy on the validation split, mean over seeds per group.",
                 f"Chosen by the rule in `benchmarks/sweep_neighbours.py`: **{chosen[0]}**.", "", *stage1.table(summary, chosen, split)]
    stage1.write_report(stem, lines, floors)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
