"""Training and embedding throughput of the default CAE (a benchmark, not a timed test).

Trains the default config on PneumoniaMNIST (4,708 train images, 28 px) for the default number of
epochs, then embeds every split. Writes ``runs/speed-<time>/speed.{json,md}``; ``--publish``
replaces the committed ``benchmarks/results/speed.{json,md}`` (only when asked).

Run on an otherwise idle machine:  CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/speed.py
Reference: the authors' AESIMCLR trains at about 200 images/s on the same 2-core machine.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import date, datetime
from pathlib import Path

import torch

from cae_lib.config import CAEConfig
from cae_lib.embed import embed
from cae_lib.evaluate import load_splits
from cae_lib.experiment import build_trainer, config_for_data
from cae_lib.models import count_parameters
from cae_lib.utils import peak_memory_mb, write_json, write_text

PUBLISHED = Path(__file__).resolve().parent / "results"


def main() -> None:
    parser = argparse.ArgumentParser(description="Training and embedding throughput of the default CAE.")
    parser.add_argument("--publish", action="store_true", help=f"write the committed results in {PUBLISHED}")
    args = parser.parse_args()
    out = PUBLISHED if args.publish else Path("runs") / f"speed-{datetime.now():%Y%m%d-%H%M%S}"
    splits = load_splits("pneumoniamnist")
    cfg = config_for_data(CAEConfig(dataset="pneumoniamnist"), splits["train"])
    trainer = build_trainer(cfg, splits["train"], progress=False)  # no validation pass: pure training throughput
    t0 = time.perf_counter()
    history = trainer.fit()
    train_seconds = time.perf_counter() - t0
    n_train = len(splits["train"])
    t0 = time.perf_counter()
    n_embedded = sum(len(embed(trainer.model, d)) for d in splits.values())
    embed_seconds = time.perf_counter() - t0
    result = {
        "date": date.today().isoformat(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "config": cfg.to_dict(),
        "parameters": count_parameters(trainer.model),
        "epochs": len(history),
        "train_seconds": train_seconds,
        "train_images_per_sec": n_train * len(history) / train_seconds,
        "train_views_per_sec": 2 * n_train * len(history) / train_seconds,
        "embed_images_per_sec": n_embedded / embed_seconds,
        "per_epoch_seconds": [h["seconds"] for h in history],
        "peak_memory_mb": peak_memory_mb(),
        "reference_aesimclr_images_per_sec": 200,
    }
    write_json(out / "speed.json", result)
    md = f"""# Speed of the default CAE ({result['date']})

Machine: {result['machine']}. PneumoniaMNIST, {n_train} train images at 28 px, batch {cfg.train.batch_size}, two views per image.

| quantity | value |
|---|---|
| parameters | {result['parameters']:,} |
| default epochs | {result['epochs']} |
| training time | {train_seconds:.1f} s |
| training throughput | {result['train_images_per_sec']:.0f} images/s ({result['train_views_per_sec']:.0f} views/s) |
| embedding throughput (eval mode) | {result['embed_images_per_sec']:.0f} images/s |
| peak memory | {result['peak_memory_mb']:.0f} MB |
| reference: authors' AESIMCLR on this machine | about 200 images/s |
"""
    write_text(out / "speed.md", md)
    print(md)
    print(f"written to {out}")


if __name__ == "__main__":
    main()
