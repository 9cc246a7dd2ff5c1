"""The sweep behind the default clusterer: which algorithm, on which features, chosen on validation splits only.

The CAE's codes hold the labels in their neighbourhoods (a kNN probe reads them well) more than in
compact blobs, so the clustering step was re-opened with the neighbour-based clusterers
(:mod:`cae_lib.cluster.spectral`, :mod:`cae_lib.cluster.scan`) beside k-means, Gaussian mixtures and
Ward. This script scores every candidate on the **validation** split and picks the default by the
rule below, which was written (and committed) before the sweep ran.

**Runs.** The CAE trained by ``python -m cae_lib train`` at the default recipe (160 steps) and at the
long recipe (1,600 steps, width 16), on PneumoniaMNIST and BreastMNIST at 28 px, seeds 0, 1 and 2:
12 runs, in ``RUNS/<dataset>-<recipe>-s<seed>/model.pt``. The long recipe keeps width 16: on the
validation splits of a prototype (``shared/evidence/neighbour-clustering-prototype.md``) width 32
clustered no better than width 16 (spectral on standardised z: 0.844 against 0.852, mean of 3 seeds)
and k-means on it collapsed on two seeds of three.

**Candidates.** Every method of :data:`cae_lib.cluster.METHODS` (k-means, Gaussian mixture, Ward,
spectral on the kNN graph, SCAN) on every feature choice (the latent code z or the projection
h = g(z); as they are, standardised, or L2-normalised): 30 candidates. Each is fitted on the train
split's codes with k = number of classes and scored by Hungarian accuracy on the validation split.

**The rule** (fixed before the sweep ran):

1. *Eligible*: in each of the four groups (dataset x recipe), the candidate's mean validation
   Hungarian accuracy over the seeds is at least that of today's default, k-means on h as it is
   (``projection/none``), on the same runs: the default must never be worse than k-means on the
   same codes. And its fit + predict takes at most 10 s on one core on PneumoniaMNIST (the
   mean over that dataset's runs).
2. *Choice*: the eligible candidate with the highest mean, over the four groups, of the mean
   validation Hungarian accuracy. Means within 0.001 of each other are a tie, broken by the
   better worst run.
3. If no candidate but k-means on h is eligible, the default stays.

The post-hoc look (``--posthoc-test``), run only after the choice, scores every candidate on the
official test split, so that every method's test numbers are reported, not only the winner's; it
chooses nothing. It also scores the bundled ``digits`` runs (``RUNS/digits-default-s<seed>``), a
data set the choice never saw, to check that the default was not tuned to the two MedMNIST sets.

    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/sweep_clusterers.py --runs runs/sweep_clusterers
    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/sweep_clusterers.py --runs runs/sweep_clusterers --posthoc-test

Writes ``RUNS/sweep_clusterers.{jsonl,md}`` (and ``RUNS/sweep_clusterers_test.{jsonl,md}``); the
committed copies are in ``benchmarks/results/``. The train / val codes of each run are cached in
``RUNS/codes/`` (the test codes in a separate file, read only by ``--posthoc-test``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cae_lib.checkpoint import load_checkpoint, read_checkpoint, run_finished
from cae_lib.cluster import METHODS, LatentClusterer
from cae_lib.data import load_dataset
from cae_lib.embed import embed
from cae_lib.metrics import hungarian_accuracy, majority_class_floor

SPACES = ("latent", "projection")
PREPROCESSES = ("none", "standardize", "l2")
CANDIDATES = [(method, f"{space}/{pre}") for method in METHODS for space in SPACES for pre in PREPROCESSES]
REFERENCE = ("kmeans", "projection/none")
TIME_LIMIT_S = 10.0
TIE = 0.001


def run_name(path: Path) -> tuple[str, str, int]:
    """``RUNS/pneumoniamnist-long-s2`` -> ("pneumoniamnist", "long", 2)."""
    dataset, recipe, seed = path.name.rsplit("-", 2)
    return dataset, recipe, int(seed.removeprefix("s"))


def codes_of(run: Path, cache: Path, splits: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The run's codes ``{f"{space}_{split}": (N, D)}`` and labels ``{f"y_{split}": (N,)}``, cached per split group."""
    name = cache / f"{run.name}-{'_'.join(splits)}.npz"
    if name.is_file():
        with np.load(name) as f:
            return dict(f)
    model, cfg, _ = load_checkpoint(run / "model.pt")
    data = {s: load_dataset(cfg.dataset, split=s, size=cfg.size) for s in splits}
    codes = {f"{space}_{s}": embed(model, d, space=space) for space in SPACES for s, d in data.items()}
    codes.update({f"y_{s}": np.asarray(d.labels).reshape(-1) for s, d in data.items()})
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(name, **codes)
    return codes


def score(codes: dict[str, np.ndarray], method: str, features: str, split: str, seed: int) -> tuple[float, float]:
    """``(Hungarian accuracy on split, seconds to fit on train and predict split)`` of one candidate."""
    space, pre = features.split("/")
    k = len(np.unique(codes["y_train"]))
    start = time.perf_counter()
    clusterer = LatentClusterer(k, method, None if pre == "none" else pre, seed=seed).fit(codes[f"{space}_train"])
    predicted = clusterer.predict(codes[f"{space}_{split}"])
    seconds = time.perf_counter() - start
    return hungarian_accuracy(codes[f"y_{split}"], predicted), seconds


def sweep(runs: list[Path], cache: Path, split: str) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        dataset, recipe, seed = run_name(run)
        codes = codes_of(run, cache, ("train", split) if split == "val" else ("train", "test"))
        for method, features in CANDIDATES:
            acc, seconds = score(codes, method, features, split, seed)
            rows.append({"dataset": dataset, "recipe": recipe, "seed": seed, "method": method, "features": features,
                         f"{split}_hungarian_acc": acc, "seconds": seconds, "floor": majority_class_floor(codes[f"y_{split}"])})
            print(f"{run.name:28s} {method:13s} {features:22s} {acc:.3f} ({seconds:.1f} s)", flush=True)
    return rows


def group_means(rows: list[dict[str, Any]], key: str) -> dict[tuple[str, str], dict[tuple[str, str], list[float]]]:
    """``{(method, features): {(dataset, recipe): [score per seed]}}``."""
    out: dict[tuple[str, str], dict[tuple[str, str], list[float]]] = {}
    for r in rows:
        out.setdefault((r["method"], r["features"]), {}).setdefault((r["dataset"], r["recipe"]), []).append(r[key])
    return out


def choose(rows: list[dict[str, Any]]) -> tuple[tuple[str, str], dict[tuple[str, str], dict[str, Any]]]:
    """The rule of the module docstring: ``(chosen (method, features), {candidate: its summary})``."""
    scores = group_means(rows, "val_hungarian_acc")
    seconds = group_means([r for r in rows if r["dataset"] == "pneumoniamnist"], "seconds")
    groups = sorted(scores[REFERENCE])
    reference = {g: float(np.mean(scores[REFERENCE][g])) for g in groups}
    summary = {}
    for cand, per in scores.items():
        means = {g: float(np.mean(per[g])) for g in groups}
        t = float(np.mean(next(iter(seconds[cand].values())))) if cand in seconds else 0.0
        summary[cand] = {
            "means": means, "mean": float(np.mean(list(means.values()))),
            "worst": float(min(min(per[g]) for g in groups)), "seconds": t,
            "eligible": all(means[g] >= reference[g] - 1e-12 for g in groups) and t <= TIME_LIMIT_S,
        }
    eligible = [c for c in summary if summary[c]["eligible"]]
    best_mean = max(summary[c]["mean"] for c in eligible)
    tied = [c for c in eligible if summary[c]["mean"] >= best_mean - TIE]
    chosen = max(tied, key=lambda c: (summary[c]["worst"], summary[c]["mean"]))
    return chosen, summary


def table(summary: dict[tuple[str, str], dict[str, Any]], chosen: tuple[str, str] | None, split: str) -> list[str]:
    groups = sorted(next(iter(summary.values()))["means"])
    head = " | ".join(f"{d} {r}" for d, r in groups)
    lines = [f"| method | features | mean | worst run | {head} |" + (" s (PneumoniaMNIST) | eligible |" if chosen else ""),
             "|---|---|---|---|" + "---|" * len(groups) + ("---|---|" if chosen else "")]
    for cand in sorted(summary, key=lambda c: -summary[c]["mean"]):
        s = summary[cand]
        name = f"**{cand[0]}**" if cand == chosen else cand[0]
        row = f"| {name} | {cand[1]} | {s['mean']:.3f} | {s['worst']:.3f} | " + " | ".join(f"{s['means'][g]:.3f}" for g in groups)
        row += " |" + (f" {s['seconds']:.1f} | {'yes' if s['eligible'] else 'no'} |" if chosen else "")
        lines.append(row)
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--runs", type=Path, required=True, help="folder of the run folders <dataset>-<recipe>-s<seed>")
    p.add_argument("--posthoc-test", action="store_true", help="after the choice: every candidate on the test split")
    p.add_argument("--summary-only", action="store_true", help="rewrite the .md from the .jsonl already in RUNS (no clustering)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    split = "test" if args.posthoc_test else "val"
    stem = args.runs / ("sweep_clusterers_test" if args.posthoc_test else "sweep_clusterers")
    if args.summary_only:
        rows = [json.loads(line) for line in stem.with_suffix(".jsonl").read_text().splitlines()]
        runs = sorted({(r["dataset"], r["recipe"], r["seed"]) for r in rows})
    else:
        runs = sorted(r for r in args.runs.iterdir() if (r / "model.pt").is_file() and (split == "test" or not r.name.startswith("digits")))
        unfinished = [r.name for r in runs if not run_finished(read_checkpoint(r / "model.pt").get("extra") or {})]
        if unfinished:
            raise SystemExit(f"runs still training (or interrupted): {', '.join(unfinished)}; wait, or finish them with train --resume")
        rows = sweep(runs, args.runs / "codes", split)
        stem.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    floors = {(r["dataset"], r["recipe"]): r["floor"] for r in rows}
    if args.posthoc_test:
        summary = {c: {"means": {g: float(np.mean(v)) for g, v in per.items()}, "mean": float(np.mean([np.mean(v) for v in per.values()])),
                       "worst": float(min(min(v) for v in per.values())), "seconds": 0.0}
                   for c, per in group_means(rows, "test_hungarian_acc").items()}
        lines = ["# Every clusterer on the official test split (post-hoc: it chose nothing)", "",
                 f"{len(runs)} runs (the 12 of the sweep, and 3 on the bundled digits, which the choice never saw); "
                 "Hungarian accuracy on the test split, mean over seeds per group.", "", *table(summary, None, split)]
    else:
        chosen, summary = choose(rows)
        lines = ["# Which clusterer: validation split only", "",
                 f"{len(runs)} runs, {len(CANDIDATES)} candidates; Hungarian accuracy on the validation split, mean over seeds per group.",
                 f"Chosen by the rule in `benchmarks/sweep_clusterers.py`: **{chosen[0]} on {chosen[1]}**.", "",
                 *table(summary, chosen, split)]
    write_report(stem, lines, floors)
    return 0


def write_report(stem: Path, lines: list[str], floors: dict[tuple[str, str], float]) -> None:
    """``stem.md``: the lines, then the majority-class floor of every group; printed too."""
    lines = [*lines, "", "Majority-class floor: " + ", ".join(f"{d} {r} {f:.3f}" for (d, r), f in sorted(floors.items())) + "."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    raise SystemExit(main())
