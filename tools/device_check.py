"""One short CUDA check for the device machine (not part of CI).

1. Speed: train the default CAE on PneumoniaMNIST for a few epochs on CUDA, with and without
   mixed precision, and report training images per second.
2. A small validation-split sweep of the CAE defaults (temperature, augmentation strength,
   epochs), scored ONLY on the val split, to choose defaults without touching test.

Usage: python tools/device_check.py DATA_DIR OUT_JSON
"""

import itertools
import json
import sys
import time

import numpy as np
import torch

from cae_lib.config import preset
from cae_lib.evaluate import EvalConfig, evaluate_embeddings
from cae_lib.embed import embed
from cae_lib.evaluate import load_splits
from cae_lib.experiment import build_trainer, config_for_data

data_dir, out_json = sys.argv[1], sys.argv[2]
stage = sys.argv[3] if len(sys.argv) > 3 else "1"
results = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__, "speed": [], "sweep": []}
splits = load_splits("pneumoniamnist", data_dir)


def train(overrides, seed, amp=False, epochs=None):
    cfg = config_for_data(preset("cae", dataset="pneumoniamnist"), splits["train"])
    cfg.train.seed, cfg.train.device = seed, "cuda"
    if amp:
        cfg.train.precision = "fp16"
    for k, v in overrides.items():
        section, key = k.split(".")
        setattr(getattr(cfg, section), key, v)
    if epochs:
        cfg.train.epochs = epochs
    tr = build_trainer(cfg, splits["train"], progress=False)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    hist = tr.fit()
    torch.cuda.synchronize()
    return tr.model, hist, time.perf_counter() - t0


for amp in ((False, True) if stage == "1" else ()):
    train({}, 0, amp=amp, epochs=1)  # warm-up
    model, hist, sec = train({}, 0, amp=amp, epochs=5)
    results["speed"].append({"amp": amp, "epochs": 5, "seconds": sec, "train_images_per_sec": 5 * len(splits["train"]) / sec,
                             "final_top1": hist[-1]["top1"], "final_recon": hist[-1]["recon"]})
    print(results["speed"][-1], flush=True)

grid = {
    "loss.temperature": [0.1, 0.2, 0.5],
    "augment.strength": [1.0, 1.5],
    "train.epochs": [15, 30],
}
configs = [dict(zip(grid, values)) for values in itertools.product(*grid.values())]
seeds = (0, 1)
if stage == "2":  # second round: CPU-affordable budgets around the best of round 1
    base = {"loss.temperature": 0.5, "train.epochs": 15}
    configs = [
        {**base, "model.width": 16, "augment.strength": 1.5},
        {**base, "model.width": 16, "augment.strength": 2.0},
        {**base, "model.width": 32, "augment.strength": 2.0},
        {**base, "model.width": 16, "augment.strength": 2.0, "train.epochs": 20},
        {**base, "model.width": 16, "augment.strength": 2.0, "loss.temperature": 1.0},
        {**base, "model.width": 16, "augment.strength": 2.0, "model.latent_dim": 64},
    ]
    seeds = (0, 1, 2)
for overrides in configs:
    for seed in seeds:
        model, hist, sec = train(overrides, seed)
        model = model.cpu()
        z = {s: embed(model, d) for s, d in splits.items() if s != "test"}
        h = {s: embed(model, d, space="projection") for s, d in splits.items() if s != "test"}
        y = {s: np.asarray(d.labels) for s, d in splits.items() if s != "test"}
        # val-only evaluation: use val as the "test" slot, never the test split
        zz = {"train": z["train"], "val": z["val"], "test": z["val"]}
        hh = {"train": h["train"], "val": h["val"], "test": h["val"]}
        yy = {"train": y["train"], "val": y["val"], "test": y["val"]}
        m = evaluate_embeddings(zz, yy, {"latent": zz, "projection": hh}, EvalConfig(), seed=seed)
        row = {**{k: v for k, v in overrides.items()}, "seed": seed, "seconds": sec, "val_hungarian": m["val_hungarian_acc"],
               "val_by_features": m["val_hungarian_by_features"], "val_knn": m["knn_acc"], "val_linear": m["linear_acc"],
               "top1": hist[-1]["top1"], "recon": hist[-1]["recon"]}
        results["sweep"].append(row)
        print(json.dumps(row), flush=True)
        json.dump(results, open(out_json, "w"), indent=1)
json.dump(results, open(out_json, "w"), indent=1)
