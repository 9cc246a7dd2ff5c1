"""The CAE at every MedMNIST+ size: parameters, MACs, training throughput and peak memory.

For each image size (28, 64, 128, 224 px) this builds the default CAE (grey images, L = 32,
width 16), counts its parameters and its multiply-accumulates per image, and trains it for a few
steps on synthetic uint8 images with the real objective (two augmented views, reconstruction and
NT-Xent) for two short epochs, timing the second (the first warms up). Each size runs in its own process, so its peak
memory is its own: resident memory on the CPU, ``torch.cuda.max_memory_allocated`` on a GPU.

    .venv/bin/python benchmarks/sizes.py                                    # CPU, fp32, into runs/
    .venv/bin/python benchmarks/sizes.py --device cuda --precision fp32 bf16 # one GPU
    .venv/bin/python benchmarks/sizes.py --out benchmarks/results/sizes --overwrite   # publish

Writes ``OUT.json`` and ``OUT.md`` (default ``runs/sizes-<time>``); an existing result is kept
unless ``--overwrite`` is given. Run it on an otherwise idle machine: two torch processes on two
cores slow each other down several times.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
from torch.utils.flop_counter import FlopCounterMode

from cae_lib.config import IMAGE_SIZES, CAEConfig, ModelConfig, TrainConfig
from cae_lib.batches import ImageBatches
from cae_lib.losses import CAEObjective
from cae_lib.models import ContrastiveAutoencoder, count_parameters
from cae_lib.run_trainer import RunTrainer
from cae_lib.files import write_json, write_text
from cae_lib.machine import peak_memory_mb

ROOT = Path(__file__).resolve().parents[1]


def count_macs(model: nn.Module, input_shape: tuple[int, int, int]) -> int:
    """Multiply-accumulates of one forward pass on one image of ``input_shape`` (C, H, W).

    Counted by ``torch.utils.flop_counter`` (convolutions and matrix products; 1 MAC = 2 FLOPs),
    in eval mode on the CPU. For a training step of the CAE multiply by about 3 (forward +
    backward) and by 2 (two views).
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops() // 2)


def matmul_peak_gflops(device: torch.device, n: int = 1024, repeats: int = 10) -> float:
    """Measured fp32 matrix-multiply rate (GFLOP/s) of this process on ``device``: the yardstick for the training rate."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    if device.type == "cuda":
        torch.cuda.synchronize()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def measure(size: int, device: str, precision: str, batch_size: int, steps: int) -> dict:
    """Train the default CAE at ``size`` px for two epochs of ``steps`` steps; time the second.

    The first epoch warms up (allocations, kernel choice); the second is the measurement.
    """
    cfg = CAEConfig(dataset="synthetic", model=ModelConfig(image_size=size))
    cfg.train = TrainConfig(epochs=2, batch_size=batch_size, device=device, precision=precision, seed=0)
    images = np.random.default_rng(0).integers(0, 256, size=(batch_size * steps, size, size), dtype=np.uint8)
    model = ContrastiveAutoencoder(cfg.model)
    macs = count_macs(model, (1, size, size))
    trainer = RunTrainer(model, CAEObjective.from_config(cfg), ImageBatches(images), cfg.train, progress=False)
    peak_before = matmul_peak_gflops(trainer.device)
    history = trainer.fit()
    peak = max(peak_before, matmul_peak_gflops(trainer.device))  # measured on either side of the training
    cuda = trainer.device.type == "cuda"
    gflop = 2 * 3 * 2 * macs / 1e9  # 2 FLOPs per MAC, forward + backward ~ 3x, two views
    return {
        "size": size,
        "precision": precision,
        "device": torch.cuda.get_device_name(0) if cuda else f"CPU ({os.cpu_count()} cores, {torch.get_num_threads()} threads)",
        "parameters": count_parameters(model),
        "macs_per_image": macs,
        "train_gflop_per_image": gflop,
        "batch_size": batch_size,
        "timed_steps": steps,
        "train_images_per_sec": history[-1]["images_per_sec"],
        "matmul_peak_gflops": peak,
        "percent_of_matmul_peak": 100 * history[-1]["images_per_sec"] * gflop / peak,
        "peak_memory_mb": torch.cuda.max_memory_allocated() / 2**20 if cuda else peak_memory_mb(),
        "memory_kind": "CUDA max allocated" if cuda else "process peak RSS",
    }


def markdown(rows: list[dict], machine: str) -> str:
    lines = [
        f"# The CAE at every MedMNIST+ size ({datetime.now():%Y-%m-%d})",
        "",
        f"Machine: {machine}. Default CAE (grey input, latent 32, width 16), two views per image, "
        "synthetic uint8 images; throughput of the second of two short epochs (the first warms up); `benchmarks/sizes.py`. "
        "The % column compares the training FLOP rate with an fp32 1024x1024 matrix multiply measured in the same process "
        "(the machine's practical peak), so it stays meaningful on a busy machine.",
        "",
        "| size (px) | precision | parameters | MACs / image (forward) | training GFLOP / image | batch | training images/s | % of matmul peak | peak memory (MB) | device |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['size']} | {r['precision']} | {r['parameters']:,} | {r['macs_per_image'] / 1e6:,.1f} M | "
            f"{r['train_gflop_per_image']:.2f} | {r['batch_size']} | {r['train_images_per_sec']:,.1f} | "
            f"{r['percent_of_matmul_peak']:.0f} % of {r['matmul_peak_gflops']:.0f} GFLOP/s | "
            f"{r['peak_memory_mb']:,.0f} ({r['memory_kind']}) | {r['device']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=list(IMAGE_SIZES), choices=IMAGE_SIZES, help="image sizes")
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16", "fp16"], help="precisions to measure")
    p.add_argument("--batch-size", type=int, default=None, help="default: 64 on the CPU, 256 on a GPU")
    p.add_argument("--steps", type=int, default=3, help="timed training steps per size")
    p.add_argument("--out", default=f"runs/sizes-{datetime.now():%Y%m%d-%H%M%S}", help="output path without suffix")
    p.add_argument("--overwrite", action="store_true", help="replace an existing OUT.json / OUT.md")
    p.add_argument("--one", type=int, help=argparse.SUPPRESS)  # internal: measure one size in this process
    args = p.parse_args(argv)
    batch = args.batch_size or (256 if args.device.startswith("cuda") else 64)
    if args.one is not None:
        print(json.dumps(measure(args.one, args.device, args.precision[0], batch, args.steps)))
        return 0
    out = Path(args.out)
    if not args.overwrite and (out.with_suffix(".json").exists() or out.with_suffix(".md").exists()):
        print(f"error: {out}.json / .md exist; pass --overwrite to replace them, or another --out", file=sys.stderr)
        return 2
    rows = []
    for precision in args.precision:
        for size in args.sizes:
            cmd = [sys.executable, __file__, "--one", str(size), "--device", args.device, "--precision", precision,
                   "--batch-size", str(batch), "--steps", str(args.steps)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"error at {size} px, {precision}:\n{done.stderr[-2000:]}", file=sys.stderr)
                return 1
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"{size:>3} px {precision}: {rows[-1]['train_images_per_sec']:8.1f} images/s, "
                  f"{rows[-1]['peak_memory_mb']:7.0f} MB", flush=True)
    machine = f"{platform.machine()}, torch {torch.__version__}"
    write_json(out.with_suffix(".json"), {"machine": machine, "rows": rows})
    write_text(out.with_suffix(".md"), markdown(rows, machine))
    print(f"wrote {out}.json and {out}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
