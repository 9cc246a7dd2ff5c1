"""Retrain time, throughput and quality of the default CAE, beside the previous default (a benchmark, not a test).

For the current default and the previous one (constant learning rate, 270 steps, fp32, temperature
0.5, no brightness ramp; clustering features chosen per run on the validation split) this trains on PneumoniaMNIST (4,708 train
images, 28 px) and reports, all from one run:

* **one core** (``taskset -c 0``, one torch thread): the retrain time and the test-split quality
  of every seed (Hungarian accuracy, kNN, linear probes, the majority-class floor beside them);
* **two cores** (two torch threads, one seed): the retrain time;
* the training FLOPs per image (forward and backward, both views, counted by
  ``torch.utils.flop_counter`` on a real training step), the measured matrix-multiply peak of the
  same process (fp32 and bf16, 1024 x 1024), and the percentage of that limit the training reached:
  ``images/s x FLOPs per image / peak``;
* the one-core retrain time of the current default in fp32 (what ``precision="auto"`` runs on a CPU
  without native bf16);
* the same for the current default with freed memory handed back to the system (the trainer before
  it kept freed memory for reuse, ``cae_lib.memory``), one core and two, and the minor page faults
  per epoch of every run: the A/B of that change.

Both configs run today's trainer (with freed memory kept), so the previous default's figures show
what the config change alone buys.

Each training runs in its own process, one after the other, so the thread settings and peak
memory are its own. Run it on an otherwise idle machine (about 15 minutes on 2 cores):

    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/speed.py

Writes ``runs/speed-<time>/speed.{json,md}``; ``--publish`` replaces the committed
``benchmarks/results/speed.{json,md}`` (only when asked).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sweep_defaults import apply_overrides  # this script's folder is on sys.path when it runs
from torch.utils.flop_counter import FlopCounterMode

import cae_lib.run_trainer as trainer_module
from cae_lib.config import CAEConfig
from cae_lib.batches import images_to_float
from cae_lib.evaluate import EvalConfig, evaluate_model, load_splits
from cae_lib.experiment import build_trainer, config_for_data
from cae_lib.losses import CAEObjective
from cae_lib.models import ContrastiveAutoencoder
from cae_lib.files import write_json, write_text
from cae_lib.machine import peak_memory_mb

PUBLISHED = Path(__file__).resolve().parent / "results"
#: Overrides that turn today's default into the previous one (before the cosine schedule and bf16).
PREVIOUS_DEFAULT = {"train.schedule": "constant", "train.steps": 270, "train.lr": 3e-3, "train.precision": "fp32",
                    "loss.temperature": 0.5, "augment.gradient": 0.0}
PREVIOUS_EVAL = {"cluster_features": None}  # per-run choice on the validation split
CONFIGS = {"new default": ({}, {}), "previous default": (PREVIOUS_DEFAULT, PREVIOUS_EVAL),
           # what a CPU without native bf16 (where precision="auto" means fp32) runs; timed, not evaluated
           "new default in fp32": ({"train.precision": "fp32"}, {})}


def matmul_peak(dtype: torch.dtype, n: int = 1024, repeats: int = 20, rounds: int = 5) -> float:
    """Best of ``rounds`` timings of ``repeats`` n x n matrix products, in GFLOP/s, with this process's threads."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b
    best = 0.0
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        best = max(best, 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9)
    return best


def training_flops_per_image(cfg: Any, images: np.ndarray) -> float:
    """FLOPs of one training step (both views, forward and backward) divided by its batch size."""
    model, objective = ContrastiveAutoencoder(cfg.model), CAEObjective.from_config(cfg)
    x = images_to_float(torch.from_numpy(images[:64]))
    with FlopCounterMode(display=False) as counter:
        loss, _ = objective(model, (x,), torch.Generator().manual_seed(0))
        loss.backward()
    return counter.get_total_flops() / len(x)


def run_one(name: str, seed: int, threads: int, evaluate: bool, keep_memory: bool = True) -> dict[str, Any]:
    """One training of config ``name`` with ``threads`` torch threads (this process only).

    ``keep_memory=False`` measures the trainer as it was before it kept freed memory for reuse
    (``cae_lib.memory``): glibc then hands each step's large blocks back to the system.
    """
    torch.set_num_threads(threads)
    if not keep_memory:
        trainer_module.keep_freed_memory = lambda: False
    train_overrides, eval_overrides = CONFIGS[name]
    splits = load_splits("pneumoniamnist")
    cfg = apply_overrides(config_for_data(CAEConfig(dataset="pneumoniamnist"), splits["train"]), train_overrides)
    cfg.train.seed = seed
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    flops = training_flops_per_image(cfg, splits["train"].images)
    trainer = build_trainer(cfg, splits["train"], progress=False)  # no validation pass: the retrain itself
    faults0, t0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt, time.perf_counter()
    history = trainer.fit()
    seconds = time.perf_counter() - t0
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults0
    images = len(splits["train"]) * len(history)
    steady = [len(splits["train"]) / h["seconds"] for h in history[1:]] or [images / seconds]
    row: dict[str, Any] = {
        "config_name": name, "seed": seed, "threads": threads, "precision": trainer.config.precision,
        "freed_memory": "kept" if keep_memory else "returned", "page_faults_per_epoch": faults / len(history),
        "epochs": len(history), "steps": trainer.state.step, "train_seconds": seconds,
        "images_per_sec": images / seconds, "steady_images_per_sec": float(np.median(steady)),
        "flops_per_image": flops, "matmul_peak_gflops": peaks,
        "config": cfg.to_dict(),
    }
    row["percent_of_fp32_peak"] = 100 * row["steady_images_per_sec"] * flops / (peaks["fp32"] * 1e9)
    row["percent_of_own_peak"] = 100 * row["steady_images_per_sec"] * flops / (peaks[row["precision"]] * 1e9)
    if evaluate:
        metrics = evaluate_model(trainer.model, splits, EvalConfig(**eval_overrides), seed=seed)
        row["metrics"] = {k: metrics[k] for k in ("hungarian_acc", "knn_acc", "linear_acc", "linear_unweighted_acc", "majority_floor", "cluster_features", "nmi")}
    row["peak_memory_mb"] = peak_memory_mb()
    return row


def spawn(name: str, seed: int, threads: int, evaluate: bool, keep_memory: bool = True) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "CAE_NUM_THREADS": str(threads)}
    cmd = [sys.executable, __file__, "--one", name, str(seed), str(threads), str(int(evaluate)), str(int(keep_memory))]
    if threads == 1:
        cmd = ["taskset", "-c", "0", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{name} (seed {seed}, {threads} threads) failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mean_sd(values: list[float], fmt: str = ".3f") -> str:
    return f"{np.mean(values):{fmt}} ± {np.std(values, ddof=1) if len(values) > 1 else 0.0:{fmt}}"


def markdown(rows: list[dict[str, Any]], machine: str) -> str:
    one = {n: [r for r in rows if r["config_name"] == n and r["threads"] == 1 and "metrics" in r] for n in CONFIGS}
    kept = {n: [r for r in rows if r["config_name"] == n and r["freed_memory"] == "kept"] for n in CONFIGS}
    first_one_core = {n: [r for r in kept[n] if r["threads"] == 1][:1] for n in CONFIGS}
    two = {n: [r for r in kept[n] if r["threads"] == 2] for n in CONFIGS}
    returned = {n: [r for r in rows if r["config_name"] == n and r["freed_memory"] == "returned"] for n in CONFIGS}
    r0 = rows[0]
    lines = [f"# Retrain time and speed of the default CAE ({date.today().isoformat()})", "",
             f"Machine: {machine}. PneumoniaMNIST, 4,708 train images at 28 px, batch 256, two views per image; "
             f"official test split (n = 624), majority-class floor {r0.get('metrics', {}).get('majority_floor', float('nan')):.3f}.", "",
             "## One core (`taskset -c 0`, one torch thread): retrain time and quality, per seed", "",
             "| config | precision | steps | seed | retrain (s) | images/s | Hungarian | features | kNN (k = 10) | linear (balanced / unweighted) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for n, rs in one.items():
        for r in rs:
            m = r["metrics"]
            lines.append(f"| {n} | {r['precision']} | {r['steps']} | {r['seed']} | {r['train_seconds']:.1f} | {r['steady_images_per_sec']:.0f} | "
                         f"{m['hungarian_acc']:.3f} | {m['cluster_features']} | {m['knn_acc']:.3f} | {m['linear_acc']:.3f} / {m['linear_unweighted_acc']:.3f} |")
    lines += ["", "Mean ± sd over the seeds:", "",
              "| config | retrain, one core (s) | Hungarian (worst seed) | kNN | linear (balanced) | linear (unweighted) |", "|---|---|---|---|---|---|"]
    for n, rs in one.items():
        if rs:
            h = [r["metrics"]["hungarian_acc"] for r in rs]
            lines.append(f"| {n} | {mean_sd([r['train_seconds'] for r in rs], '.1f')} | {mean_sd(h)} ({min(h):.3f}) | "
                         f"{mean_sd([r['metrics']['knn_acc'] for r in rs])} | {mean_sd([r['metrics']['linear_acc'] for r in rs])} | "
                         f"{mean_sd([r['metrics']['linear_unweighted_acc'] for r in rs])} |")
    lines += ["", "## Throughput against the machine's matrix-multiply limit", "",
              "The limit is the measured 1024 x 1024 matrix-multiply rate of the same process times the training FLOPs per image; "
              "images/s is the median over epochs after the first. *Freed memory returned* is the trainer as it was before it "
              "kept freed memory for reuse (`cae_lib.memory`): same config, same seed, only glibc's handling of freed blocks differs.", "",
              "| config | threads | freed memory | page faults / epoch | precision | training FLOPs / image | retrain (s) | images/s | matmul peak fp32 / bf16 (GFLOP/s) | limit at fp32 peak (images/s) | % of fp32 limit | % of the limit at its own precision |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for n in CONFIGS:
        for r in (first_one_core[n] + two[n] + returned[n]):
            p = r["matmul_peak_gflops"]
            limit = p["fp32"] * 1e9 / r["flops_per_image"]
            lines.append(f"| {n} | {r['threads']} | {r['freed_memory']} | {r['page_faults_per_epoch']:,.0f} | {r['precision']} | "
                         f"{r['flops_per_image'] / 1e6:.1f} M | {r['train_seconds']:.1f} | "
                         f"{r['steady_images_per_sec']:.0f} | {p['fp32']:.0f} / {p['bf16']:.0f} | {limit:.0f} | "
                         f"{r['percent_of_fp32_peak']:.0f} % | {r['percent_of_own_peak']:.0f} % |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--publish", action="store_true", help=f"write the committed results in {PUBLISHED}")
    parser.add_argument("--seeds", type=int, default=3, help="one-core seeds per config")
    parser.add_argument("--one", nargs=5, help=argparse.SUPPRESS)  # internal: name seed threads evaluate keep_memory
    args = parser.parse_args(argv)
    if args.one:
        name, seed, threads, evaluate, keep_memory = args.one
        print(json.dumps(run_one(name, int(seed), int(threads), bool(int(evaluate)), bool(int(keep_memory)))))
        return 0
    out = PUBLISHED if args.publish else Path("runs") / f"speed-{datetime.now():%Y%m%d-%H%M%S}"
    rows = []
    for name in ("new default", "previous default"):
        for seed in range(args.seeds):
            rows.append(spawn(name, seed, 1, evaluate=True))
            print(f"{name}, seed {seed}, one core: {rows[-1]['train_seconds']:.1f} s, Hungarian {rows[-1]['metrics']['hungarian_acc']:.3f}", flush=True)
        if (os.cpu_count() or 1) >= 2:
            rows.append(spawn(name, 0, 2, evaluate=False))
            print(f"{name}, two cores: {rows[-1]['train_seconds']:.1f} s", flush=True)
    for threads in (1, 2) if (os.cpu_count() or 1) >= 2 else (1,):  # the A/B of keeping freed memory
        rows.append(spawn("new default", 0, threads, evaluate=False, keep_memory=False))
        print(f"new default, {threads} thread(s), freed memory returned: {rows[-1]['train_seconds']:.1f} s", flush=True)
    rows.append(spawn("new default in fp32", 0, 1, evaluate=False))
    print(f"new default in fp32, one core: {rows[-1]['train_seconds']:.1f} s", flush=True)
    machine = f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, native bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}"
    write_json(out / "speed.json", {"date": date.today().isoformat(), "machine": machine, "rows": rows})
    md = markdown(rows, machine)
    write_text(out / "speed.md", md)
    print(md)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
