"""The sweep behind the training defaults: schedule, steps, learning rate, temperature, augmentation, loss balance, weight averaging.

Every candidate config is trained on each dataset and seed on **one CPU core** (one torch thread,
pinned with ``taskset``; two runs at a time on a 2-core machine, one per core) and scored on the
**validation split only**: the sweep never loads the test split, so choosing the default from it
tunes nothing on test. For each run it records

* the training time on one core (the budget: 45 s on PneumoniaMNIST);
* the validation Hungarian accuracy of k-means (k = #classes, fitted on train) for every feature
  candidate (z or the projection h; none / L2 / standardise), so a *fixed* feature choice can be
  compared across seeds;
* validation kNN (k = 10, cosine) and linear-probe accuracy (balanced and unweighted) on z;
* (from stage 7 on) the validation reconstruction error, mean per-pixel squared error.

The rule, fixed before the sweep ran: among the configs that train PneumoniaMNIST in at most 45 s
on one core (as timed here, two runs sharing the machine), take the one with the highest mean over
datasets and seeds of (val Hungarian at the fixed feature choice + val kNN) / 2. The feature choice
is the candidate whose *worst* run is best, over all runs of the sweep. From stage 7 on, a condition
set before that stage ran: a config whose validation reconstruction error exceeds ``RECON_TOLERANCE``
times the stage-4 choice's on either dataset is not eligible (the default must still reconstruct).

It ran in eight stages, each added after reading the previous one's validation results:

1. schedule (constant or cosine), 120 / 160 steps, learning rate 3e-3 / 1e-2, temperature 0.5 / 0.2;
2. the constant rate at 144 steps (8 epochs), because it clustered best in stage 1 at 160 steps,
   just over the budget;
3. a linear brightness ramp (``AugmentConfig.gradient``), because in stages 1 and 2 k-means on the
   projection split PneumoniaMNIST along the top-to-bottom brightness difference on about one seed
   in three (correlation 0.64 with that split, 0.37 with the labels, in one such run);
4. the stage-3 choice at 160 steps, because keeping freed memory for reuse (``cae_lib.memory``)
   made a step about 15 % faster, so more steps fit the budget. Stage 4's times were measured with
   that change, the earlier stages' without it;
5. zooming out as well as in (``AugmentConfig.max_scale`` 1.1 / 1.2), because in the train split
   the two classes are framed differently (see ``STAGES``). The rule kept the stage-4 choice;
6. the view budget: reconstructing one view of the two (``LossConfig.recon_views = 1``, a quarter
   fewer FLOPs a step) at 160 and 216 steps, batches of 128 (twice the updates), and a 64-number
   code. The rule kept the stage-4 choice;
7. the balance of the two loss terms (``LossConfig.recon_weight`` 0.1, 0.3, 3, and 0.3 with one
   view reconstructed), with a condition set before it ran: the default must still reconstruct
   (``RECON_TOLERANCE``). Each run records its validation reconstruction error from this stage
   on; the stage-4 choice's six runs were re-run to record theirs (same metrics to the last
   digit). The rule kept the stage-4 choice;
8. ending with a moving average of the weights (``TrainConfig.ema_decay`` 0.9, 0.95, 0.98: about
   10, 20 and 50 of the 160 steps), because the seed moves the clustering more than any config
   did. The rule kept the stage-4 choice.

``--cluster-methods`` then compares clustering algorithms (k-means, Gaussian mixtures, Ward) on the
codes every run saved, still on the validation split only (committed as
``benchmarks/results/sweep_cluster_methods.md``).

The post-hoc look (``--posthoc-test``), run only after the choice was made, retrains every
candidate with the same seeds and scores it on the official test split as well, into
``OUT/sweep_test.{jsonl,md}`` (committed as ``benchmarks/results/sweep_defaults_test.{jsonl,md}``;
174 runs: about 40 minutes on 2 cores for stages 1-5, 20 for stage 6, 9 for stage 7, 8 for stage 8; add ``--posthoc-test`` to the command
below, same ``--out``).
It chooses nothing: it shows how far the validation ranking carries to the test split, and adds kNN
under changes of framing (:func:`framing_probes`).

    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/sweep_defaults.py \\
        --datasets pneumoniamnist breastmnist --seeds 0 1 2 --out runs/sweep

Writes ``OUT/sweep.jsonl`` (one line per run, appended as runs finish, so an interrupted sweep
resumes where it stopped), ``OUT/sweep.md`` and the train / val codes of each run in
``OUT/embeddings/`` (for trying other clusterings, still without the test split). The committed
copy is ``benchmarks/results/sweep_defaults.{jsonl,md}`` (174 runs; stage 6's 30 runs took 15 minutes
on 2 cores, two runs at a time, stage 7's 24 and its reference's 6 re-runs 12 minutes, stage 8's 18 runs 6 minutes).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import spearmanr

from cae_lib.cluster import LatentClusterer
from cae_lib.config import CAEConfig
from cae_lib.batches import images_to_float
from cae_lib.data import load_dataset, to_medmnist_layout
from cae_lib.embed import embed, reconstruct
from cae_lib.evaluate import EvalConfig, evaluate_embeddings
from cae_lib.experiment import build_trainer, config_for_data
from cae_lib.metrics import hungarian_accuracy
from cae_lib.probes import knn_accuracy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from prior_shift import centre_zoom  # noqa: E402  (the framing experiment's zoom)

STAGES: list[dict[str, dict[str, Any]]] = [
    {
        "constant, 160 steps": {"train.schedule": "constant", "train.steps": 160},
        **{
            f"cosine, {steps} steps, lr {lr:g}, tau {tau:g}": {"train.schedule": "cosine", "train.steps": steps, "train.lr": lr, "loss.temperature": tau}
            for steps in (120, 160)
            for lr in (3e-3, 1e-2)
            for tau in (0.5, 0.2)
        },
    },
    # Stage 2, added after stage 1 (above) showed the constant rate clustering best on both datasets,
    # with 160 steps (9 epochs on PneumoniaMNIST) at the edge of the budget: 8 epochs, both temperatures.
    {
        "constant, 144 steps": {"train.schedule": "constant", "train.steps": 144},
        "constant, 144 steps, tau 0.2": {"train.schedule": "constant", "train.steps": 144, "loss.temperature": 0.2},
    },
    # Stage 3: in every config above, k-means on the projection split either along the labels (val
    # Hungarian ~0.83-0.87) or, seed by seed, along the top-to-bottom brightness difference (|r| = 0.64
    # with the split where it failed). A random linear brightness ramp (uneven exposure) makes the
    # views disagree on it, so the codes learn to ignore it.
    {
        "constant, 144 steps, ramp 0.2": {"train.schedule": "constant", "train.steps": 144, "augment.gradient": 0.2},
        "cosine, 120 steps, lr 0.003, tau 0.2, ramp 0.2": {"train.schedule": "cosine", "train.steps": 120, "loss.temperature": 0.2, "augment.gradient": 0.2},
    },
    # Stage 4: once the trainer kept freed memory for reuse (cae_lib.memory: no page faults), a step
    # took about 15 % less time on one core, so the stage-3 choice fits in the budget with more steps.
    {
        "cosine, 160 steps, lr 0.003, tau 0.2, ramp 0.2": {"train.schedule": "cosine", "train.steps": 160, "loss.temperature": 0.2, "augment.gradient": 0.2},
    },
    # Stage 5: the crops only zoomed in. In PneumoniaMNIST's train split the framing differs by class:
    # 2 % of the normal images and 47 % of the pneumonia images are close-framed (best matched by a
    # window under 0.95 of the mean training image; benchmarks/prior_shift.py), a cue of the acquisition
    # (field of view, the child's size) rather than of the lungs. Zooming out as well (a wider field of
    # view) makes the views disagree on it.
    {
        f"cosine, {steps} steps, lr 0.003, tau 0.2, ramp 0.2, zoom out {zoom:g}": {
            "train.schedule": "cosine", "train.steps": steps, "loss.temperature": 0.2, "augment.gradient": 0.2, "augment.max_scale": zoom}
        for steps, zoom in ((160, 1.1), (160, 1.2), (120, 1.2))
    },
    # Stage 6: the view budget. The decoder is about 60 % of a training step on one core (a profile of
    # the stage-4 choice at batch 256 in bf16: 283 ms a step, 116 ms without the decoder), so
    # reconstructing one view of the two makes a step about a quarter cheaper and leaves room for more
    # steps; and smaller batches (128) give twice the updates for the same images. The rule and the
    # seeds are those of the earlier stages.
    {
        f"cosine, {steps} steps, lr 0.003, tau 0.2, ramp 0.2{', batch 128' if batch == 128 else ''}{', one view reconstructed' if views == 1 else ''}"
        f"{', latent 64' if latent == 64 else ''}": {
            "train.schedule": "cosine", "train.steps": steps, "loss.temperature": 0.2, "augment.gradient": 0.2,
            "train.batch_size": batch, "loss.recon_views": views, "model.latent_dim": latent}
        for steps, batch, views, latent in ((160, 256, 1, 32), (216, 256, 1, 32), (320, 128, 2, 32), (432, 128, 1, 32), (216, 256, 1, 64))
    },
    # Stage 7: the balance of the two terms, the paper's own trade-off, which no stage had swept. The
    # reconstruction term asks the code to keep everything the decoder needs, including what the two
    # views disagree on (the brightness ramp, the framing) and the contrastive term removes; and the
    # benchmark tables (test split) show contrastive-only training clustering as well as the CAE on
    # both datasets. The choice among these is still made on the validation splits only.
    # A bracket around 1 (0.1, 0.3, 3), and 0.3 with one view reconstructed (the cheaper step). Set
    # before it ran: the toolkit's default must still reconstruct, because the decoder makes the
    # samples of notebook 06, so a candidate whose validation reconstruction error exceeds
    # RECON_TOLERANCE times the stage-4 default's on either dataset is not eligible (RECON_REFERENCE).
    {
        f"cosine, 160 steps, lr 0.003, tau 0.2, ramp 0.2, recon weight {weight:g}{', one view reconstructed' if views == 1 else ''}": {
            "train.schedule": "cosine", "train.steps": 160, "loss.temperature": 0.2, "augment.gradient": 0.2,
            "loss.recon_weight": weight, "loss.recon_views": views}
        for weight, views in ((0.1, 2), (0.3, 2), (3.0, 2), (0.3, 1))
    },
    # Stage 8: the seed, not the config, is what moves the clustering most (PneumoniaMNIST val Hungarian
    # of the stage-4 choice: 0.832 to 0.87 over three seeds; a run's thread count alone moves its test
    # figure by up to 0.04). With 160 steps the last weights still carry the noise of the last batches.
    # Ending with a moving average of the weights (cae_lib.weight_average: about 1 / (1 - decay) recent
    # steps) smooths that out for one multiply-add per weight a step, whatever the dataset. Three
    # horizons: about 10, 20 and 50 of the 160 steps.
    {
        f"cosine, 160 steps, lr 0.003, tau 0.2, ramp 0.2, weight average {decay:g}": {
            "train.schedule": "cosine", "train.steps": 160, "loss.temperature": 0.2, "augment.gradient": 0.2,
            "train.ema_decay": decay}
        for decay in (0.9, 0.95, 0.98)
    },
]
#: The settings every candidate starts from, as they were when stage 1 ran. The toolkit's defaults have
#: since moved to the sweep's choices (temperature 0.2, the ramp), so a candidate that does not name a
#: setting must not pick up today's default, or re-running an early stage would train something else.
SWEEP_BASE: dict[str, Any] = {"train.lr": 3e-3, "loss.temperature": 0.5, "augment.gradient": 0.0, "augment.max_scale": 1.0,
                               "loss.recon_views": 2, "train.batch_size": 256, "model.latent_dim": 32, "loss.recon_weight": 1.0,
                               "train.ema_decay": None}
#: name -> overrides of the default CAEConfig (dotted keys), the base included. The previous default
#: (constant rate, 270 steps, fp32) is measured on the test split by ``benchmarks/speed.py``, not here.
CANDIDATES: dict[str, dict[str, Any]] = {name: {**SWEEP_BASE, **overrides} for stage in STAGES for name, overrides in stage.items()}
BUDGET_SECONDS = 45.0
#: Stage 7's reconstruction condition (set before it ran): eligible only if the mean validation
#: reconstruction MSE on each dataset is at most RECON_TOLERANCE times RECON_REFERENCE's.
RECON_TOLERANCE, RECON_REFERENCE = 1.5, "cosine, 160 steps, lr 0.003, tau 0.2, ramp 0.2"


def stage(name: str) -> int:
    """The sweep stage (1 to 8) a candidate was added in (see the module docstring)."""
    return next(i + 1 for i, candidates in enumerate(STAGES) if name in candidates)


def sample_sd(values: list[float]) -> float:
    """Sample standard deviation (n - 1), 0 for a single value."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def rank_correlation(a: list[float], b: list[float]) -> float:
    """Spearman correlation of ``a`` and ``b``, ties given their mean rank.

    Means of accuracies that are equal as numbers can differ in the last bits of a float (the
    order of a sum); rounding to 9 decimals first makes them the ties they are.
    """
    return float(spearmanr(np.round(a, 9), np.round(b, 9)).statistic)


def apply_overrides(cfg: Any, overrides: dict[str, Any]) -> Any:
    for key, value in overrides.items():
        section, field = key.split(".")
        setattr(getattr(cfg, section), field, value)
    return cfg


def run_one(name: str, dataset: str, seed: int, embeddings: Path | None = None, score_test: bool = False) -> dict[str, Any]:
    """Train one candidate on one core and score it on the validation split (this process only).

    With ``score_test`` (the post-hoc look, see the module docstring) it also loads the official
    test split and adds the test metrics under ``test_*`` keys; the validation metrics are computed
    exactly as in the sweep, so they show whether the retrained run reproduced its sweep row.
    """
    torch.set_num_threads(1)
    split_names = ("train", "val", "test") if score_test else ("train", "val")
    splits = {s: load_dataset(dataset, split=s) for s in split_names}
    cfg = apply_overrides(config_for_data(CAEConfig(dataset=dataset), splits["train"]), CANDIDATES[name])
    cfg.train.seed = seed
    trainer = build_trainer(cfg, splits["train"], progress=False)
    t0 = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - t0
    features = {space: {s: embed(trainer.model, d, space=space) for s, d in splits.items()} for space in ("latent", "projection")}
    if embeddings is not None:  # for studying other clusterings later, still on train/val only
        np.savez_compressed(embeddings, **{f"{space}_{s}": f[s] for space, f in features.items() for s in ("train", "val")},
                            **{f"y_{s}": np.asarray(splits[s].labels) for s in ("train", "val")})
    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    on_val = {space: {**f, "test": f["val"]} for space, f in features.items()}  # the sweep scores on val
    m = evaluate_embeddings(on_val["latent"], {**y, "test": y["val"]}, on_val, EvalConfig(), seed=seed)
    row = {
        "candidate": name, "dataset": dataset, "seed": seed, "config": cfg.to_dict(), "train_seconds": seconds,
        "epochs": trainer.epochs, "steps": trainer.state.step,
        "val_hungarian_by_features": m["val_hungarian_by_features"],
        "val_knn_acc": m["knn_acc"], "val_linear_acc": m["linear_acc"], "val_linear_unweighted_acc": m["linear_unweighted_acc"],
        "final_loss": trainer.state.history[-1]["loss"], "final_top1": trainer.state.history[-1].get("top1"),
        "val_recon_mse": reconstruction_mse(trainer.model, splits["val"].images),
    }
    if score_test:
        t = evaluate_embeddings(features["latent"], y, features, EvalConfig(), seed=seed)
        row.update({"test_hungarian_acc": t["hungarian_acc"], "test_cluster_features": t["cluster_features"],
                    "test_knn_acc": t["knn_acc"], "test_linear_acc": t["linear_acc"],
                    "test_linear_unweighted_acc": t["linear_unweighted_acc"], "test_majority_floor": t["majority_floor"]})
        row.update(framing_probes(trainer.model, splits, features["latent"], y))
    return row


def reconstruction_mse(model: Any, images: np.ndarray, batch_size: int = 512) -> float:
    """Mean per-pixel squared error of ``model``'s reconstructions of MedMNIST-layout uint8 ``images`` (N, H, W[, C]), as they are."""
    x = images_to_float(images)
    return float(torch.cat([(reconstruct(model, b) - b).pow(2).flatten(1).mean(1) for b in x.split(batch_size)]).mean())


#: Window scales of the framing probes: below 1 zooms in (a closer crop), above 1 zooms out.
ZOOM_IN, TTA_SCALES = 0.85, (0.85, 1.0, 1.15)


def zoomed(images: np.ndarray, scale: float) -> np.ndarray:
    """Centred zoom (:func:`prior_shift.centre_zoom`) of MedMNIST-layout uint8 images, (N, H, W[, C]) in and out."""
    return to_medmnist_layout(centre_zoom(images_to_float(images), scale).clamp(0, 1))


def framing_probes(model: Any, splits: dict[str, Any], z: dict[str, np.ndarray], y: dict[str, np.ndarray]) -> dict[str, float]:
    """kNN (k = 10, cosine, train codes as the reference) under changes of framing; post-hoc look only.

    * ``val_knn_zoomed_in``: the validation images zoomed in (window 0.85), the train codes as they are.
      A validation-only stand-in for a split whose images are framed closer than the train split's.
    * ``{val,test}_knn_projection``: kNN on the projection h instead of z.
    * ``{val,test}_knn_tta``: every image's code (train and evaluated) averaged over the window scales
      ``TTA_SCALES``, so framing moves it less.
    """
    out = {"val_knn_zoomed_in": knn_accuracy(z["train"], y["train"], embed(model, zoomed(splits["val"].images, ZOOM_IN)), y["val"])}
    h = {s: embed(model, splits[s], space="projection") for s in ("train", "val", "test")}
    tta = {s: np.mean([embed(model, zoomed(splits[s].images, c)) for c in TTA_SCALES], axis=0) for s in ("train", "val", "test")}
    for s in ("val", "test"):
        out[f"{s}_knn_projection"] = knn_accuracy(h["train"], y["train"], h[s], y[s])
        out[f"{s}_knn_tta"] = knn_accuracy(tta["train"], y["train"], tta[s], y[s])
    return out


#: Clustering algorithms compared on the sweep's saved codes (``--cluster-methods``): (method, GMM covariance).
CLUSTER_METHODS: tuple[tuple[str, str], ...] = (("kmeans", "full"), ("gmm", "full"), ("gmm", "diag"), ("agglomerative", "full"))


def cluster_method_scores(codes: dict[str, np.ndarray], k: int, seed: int, space: str = "projection") -> dict[str, float]:
    """Validation Hungarian accuracy of each of ``CLUSTER_METHODS`` on one run's codes.

    ``codes`` holds ``{space}_train`` (N, L), ``{space}_val`` (M, L), ``y_val`` (M,) (a sweep run's
    ``OUT/embeddings`` file). Each method is fitted on the train codes, unscaled (the fixed feature
    choice), and assigns the validation codes; labels only score.
    """
    out = {}
    for method, covariance in CLUSTER_METHODS:
        clusterer = LatentClusterer(k, method=method, seed=seed, covariance_type=covariance).fit(codes[f"{space}_train"])
        name = method if method != "gmm" else f"gmm ({covariance} covariance)"
        out[name] = hungarian_accuracy(np.asarray(codes["y_val"]), clusterer.predict(codes[f"{space}_val"]))
    return out


def compare_cluster_methods(out: Path) -> str:
    """The table of ``--cluster-methods``: every clustering method on every run saved under ``out/embeddings``."""
    scores: dict[str, dict[str, list[float]]] = {}
    files = sorted((out / "embeddings").glob("*.npz"))
    if not files:
        raise SystemExit(f"no saved codes in {out / 'embeddings'}: run the sweep with --out {out} first")
    for path in files:
        dataset, _candidate, seed = path.stem.split("-")
        with np.load(path) as codes:
            k = len(np.unique(codes["y_train"]))
            for method, acc in cluster_method_scores(dict(codes), k, int(seed)).items():
                scores.setdefault(method, {}).setdefault(dataset, []).append(acc)
    datasets = sorted({d for per in scores.values() for d in per})
    lines = ["# Clustering algorithms on the sweep's codes (validation split only)", "",
             f"{len(files)} runs of `benchmarks/sweep_defaults.py` (every candidate, dataset and seed), the fixed features",
             f"({EvalConfig().cluster_features}): each algorithm fitted on the train codes, scored on the validation codes.",
             "Hungarian accuracy, mean (worst run) over the runs.", "",
             "| algorithm | all runs | " + " | ".join(datasets) + " |", "|" + "---|" * (2 + len(datasets))]
    every = {method: [a for d in datasets for a in per[d]] for method, per in scores.items()}
    for method, per in scores.items():
        lines.append(f"| {method} | {np.mean(every[method]):.3f} ({min(every[method]):.3f}) | "
                     + " | ".join(f"{np.mean(per[d]):.3f} ({min(per[d]):.3f})" for d in datasets) + " |")
    best = max(every, key=lambda m: (min(every[m]), np.mean(every[m])))
    lines += ["", f"Best worst run: **{best}**."]
    return "\n".join(lines) + "\n"


def summarise(rows: list[dict[str, Any]]) -> str:
    """The sweep table, the fixed feature choice and the chosen default, by the rule in the module docstring."""
    datasets = sorted({r["dataset"] for r in rows})
    feature_keys = sorted(rows[0]["val_hungarian_by_features"])
    worst = {k: min(r["val_hungarian_by_features"][k] for r in rows) for k in feature_keys}
    mean = {k: float(np.mean([r["val_hungarian_by_features"][k] for r in rows])) for k in feature_keys}
    features = max(feature_keys, key=lambda k: (worst[k], mean[k]))
    lines = ["# Sweep of the training defaults (validation split only)", "",
             f"{len(rows)} runs; datasets {', '.join(datasets)}; one CPU core per run (one torch thread, pinned).", "",
             "## Feature choice for k-means, over every run of the sweep", "",
             "| features | worst run | mean |", "|---|---|---|"]
    lines += [f"| {k}{' (chosen)' if k == features else ''} | {worst[k]:.3f} | {mean[k]:.3f} |" for k in feature_keys]
    lines += ["", f"Fixed choice: **{features}** (best worst run).", "",
              "## Candidates", "", "Mean ± sample sd over seeds; Hungarian at the fixed feature choice.", ""]
    header = "| stage | candidate | " + " | ".join(
        f"{d} seconds | {d} val Hungarian (worst) | {d} val kNN | {d} val linear (unweighted) | {d} val recon MSE" for d in datasets) + " | score |"
    lines += [header, "|" + "---|" * (3 + 5 * len(datasets))]
    recon = recon_errors(rows)
    scores = {}
    for name in CANDIDATES:
        cells, parts = [], []
        for d in datasets:
            rs = [r for r in rows if r["candidate"] == name and r["dataset"] == d]
            if not rs:
                cells.append("– | – | – | – | –")
                continue
            h = [r["val_hungarian_by_features"][features] for r in rs]
            k = [r["val_knn_acc"] for r in rs]
            s = [r["train_seconds"] for r in rs]
            lin = [r["val_linear_unweighted_acc"] for r in rs]
            parts += [(a + b) / 2 for a, b in zip(h, k)]
            mse = f"{recon[name, d]:.4f}" if (name, d) in recon else "–"
            cells.append(f"{np.mean(s):.0f} | {np.mean(h):.3f} ± {sample_sd(h):.3f} ({min(h):.3f}) | {np.mean(k):.3f} ± {sample_sd(k):.3f} | {np.mean(lin):.3f} | {mse}")
        pneu = [r["train_seconds"] for r in rows if r["candidate"] == name and r["dataset"] == "pneumoniamnist"]
        within = bool(pneu) and float(np.mean(pneu)) <= BUDGET_SECONDS
        reconstructs = reconstructs_well(name, datasets, recon)
        if parts:
            scores[name] = (float(np.mean(parts)), within and reconstructs)
        note = "" if within else " (over budget)"
        note += "" if reconstructs else f" (recon MSE over {RECON_TOLERANCE:g}x the reference)"
        lines.append(f"| {stage(name)} | {name} | " + " | ".join(cells) + f" | {scores[name][0]:.4f}{note} |" if parts else f"| {stage(name)} | {name} | – |")
    eligible = {n: s for n, (s, ok) in scores.items() if ok}
    lines += ["", "Val recon MSE: mean per-pixel squared error of the validation images' reconstructions (recorded from stage 7 on,",
              f"and for its reference, {RECON_REFERENCE!r}, re-run then)."]
    if eligible:
        best = max(eligible, key=eligible.get)
        lines += ["", f"Chosen by the rule: **{best}**."]
    return "\n".join(lines) + "\n"


def recon_errors(rows: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(candidate, dataset) -> mean validation reconstruction MSE over seeds, where every run recorded it."""
    out = {}
    for key in {(r["candidate"], r["dataset"]) for r in rows}:
        values = [r.get("val_recon_mse") for r in rows if (r["candidate"], r["dataset"]) == key]
        if all(v is not None for v in values):
            out[key] = float(np.mean(values))
    return out


def reconstructs_well(name: str, datasets: list[str], recon: dict[tuple[str, str], float]) -> bool:
    """Stage 7's condition: no dataset's recon MSE above ``RECON_TOLERANCE`` x the reference's (unknown counts as met)."""
    return all(recon[name, d] <= RECON_TOLERANCE * recon[RECON_REFERENCE, d]
               for d in datasets if (name, d) in recon and (RECON_REFERENCE, d) in recon)


def summarise_test(val_rows: list[dict[str, Any]], test_rows: list[dict[str, Any]]) -> str:
    """The post-hoc table: each retrained candidate's validation score beside its test-split score.

    Both scores follow the rule's formula, (Hungarian at the fixed feature choice + kNN) / 2, mean
    over datasets and seeds; the Spearman correlation of the two over candidates says how well the
    validation ranking carried to the test split.
    """
    features = EvalConfig().cluster_features
    sweep = {(r["candidate"], r["dataset"], r["seed"]): r for r in val_rows}
    same = sum(
        1 for r in test_rows
        if (r["candidate"], r["dataset"], r["seed"]) in sweep
        and abs(sweep[(r["candidate"], r["dataset"], r["seed"])]["val_knn_acc"] - r["val_knn_acc"]) < 1e-9
        and abs(sweep[(r["candidate"], r["dataset"], r["seed"])]["val_hungarian_by_features"][features] - r["val_hungarian_by_features"][features]) < 1e-9
    )
    datasets = sorted({r["dataset"] for r in test_rows})
    lines = ["# Post-hoc look: the sweep's candidates on the official test split", "",
             "Run after the default was chosen; it chooses nothing. Each candidate is retrained with the sweep's seeds on one",
             f"core and scored on validation (as in the sweep) and on test. {same} of {len(test_rows)} retrained runs reproduced",
             "their sweep row's validation Hungarian and kNN exactly. Mean ± sample sd over seeds (worst seed); Hungarian at the fixed",
             f"features ({features}).", "",
             "| stage | candidate | " + " | ".join(f"{d} test Hungarian (worst) | {d} test kNN | {d} test linear (unweighted)" for d in datasets)
             + " | val score | test score |", "|" + "---|" * (4 + 3 * len(datasets))]
    val_scores, test_scores = [], []
    for name in CANDIDATES:
        rows = [r for r in test_rows if r["candidate"] == name]
        if not rows:
            continue
        cells = []
        for d in datasets:
            rs = [r for r in rows if r["dataset"] == d]
            if not rs:
                cells.append("– | – | –")
                continue
            h, k = [r["test_hungarian_acc"] for r in rs], [r["test_knn_acc"] for r in rs]
            lin = [r["test_linear_unweighted_acc"] for r in rs]
            cells.append(f"{np.mean(h):.3f} ± {sample_sd(h):.3f} ({min(h):.3f}) | {np.mean(k):.3f} ± {sample_sd(k):.3f} | {np.mean(lin):.3f}")
        val = float(np.mean([(r["val_hungarian_by_features"][features] + r["val_knn_acc"]) / 2 for r in rows]))
        test = float(np.mean([(r["test_hungarian_acc"] + r["test_knn_acc"]) / 2 for r in rows]))
        val_scores.append(val)
        test_scores.append(test)
        lines.append(f"| {stage(name)} | {name} | " + " | ".join(cells) + f" | {val:.4f} | {test:.4f} |")
    floors = {d: next(r["test_majority_floor"] for r in test_rows if r["dataset"] == d) for d in datasets}
    lines += ["", "Majority-class floor on test: " + ", ".join(f"{d} {f:.3f}" for d, f in floors.items()) + "."]
    for d in datasets:
        best = {}
        for key, label in (("test_hungarian_acc", "Hungarian"), ("test_knn_acc", "kNN"), ("test_linear_unweighted_acc", "unweighted linear")):
            means = {n: np.mean([r[key] for r in test_rows if r["candidate"] == n and r["dataset"] == d]) for n in CANDIDATES
                     if any(r["candidate"] == n and r["dataset"] == d for r in test_rows)}
            best[label] = max(means.values())
        lines.append(f"Best candidate mean on {d}'s test split: " + ", ".join(f"{k} {v:.3f}" for k, v in best.items()) + ".")
    if len(val_scores) >= 3:
        rho = rank_correlation(val_scores, test_scores)
        lines += [f"Spearman correlation of the validation and test scores over {len(val_scores)} candidates: {rho:.2f}."]
    lines += ["", "## kNN under changes of framing", "",
              f"kNN (k = 10, cosine), mean over seeds. *Zoomed in*: the validation images zoomed in to a {ZOOM_IN:g} window, against",
              "the train codes as they are. *h*: on the projection instead of z. *TTA*: every code averaged over windows "
              + " / ".join(f"{c:g}" for c in TTA_SCALES) + ".", ""]
    for d in datasets:
        rows = [r for r in test_rows if r["dataset"] == d and "val_knn_zoomed_in" in r]
        if not rows:
            continue
        lines += [f"### {d}", "", "| stage | candidate | val kNN | val kNN, zoomed in | test kNN | test kNN, h | test kNN, TTA |", "|---|---|---|---|---|---|---|"]
        per = {}
        for name in CANDIDATES:
            rs = [r for r in rows if r["candidate"] == name]
            if rs:
                per[name] = {k: float(np.mean([r[k] for r in rs])) for k in
                             ("val_knn_acc", "val_knn_zoomed_in", "test_knn_acc", "test_knn_projection", "test_knn_tta")}
                v = per[name]
                lines.append(f"| {stage(name)} | {name} | {v['val_knn_acc']:.3f} | {v['val_knn_zoomed_in']:.3f} | {v['test_knn_acc']:.3f} "
                             f"| {v['test_knn_projection']:.3f} | {v['test_knn_tta']:.3f} |")
        if len(per) >= 3:
            test_knn = [v["test_knn_acc"] for v in per.values()]
            rhos = {k: rank_correlation([v[k] for v in per.values()], test_knn) for k in ("val_knn_acc", "val_knn_zoomed_in")}
            lines += ["", f"Spearman correlation with test kNN over {len(per)} candidates: val kNN {rhos['val_knn_acc']:.2f}, "
                      f"val kNN zoomed in {rhos['val_knn_zoomed_in']:.2f}.", ""]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--datasets", nargs="+", default=["pneumoniamnist", "breastmnist"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--candidates", nargs="+", default=list(CANDIDATES), help="names from CANDIDATES")
    p.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="runs at a time, one pinned core each")
    p.add_argument("--out", default="runs/sweep", help="output folder; finished runs in it are not repeated")
    p.add_argument("--posthoc-test", action="store_true",
                   help="after the choice: retrain the candidates and score them on the test split too, into OUT/sweep_test.{jsonl,md}")
    p.add_argument("--cluster-methods", action="store_true",
                   help="compare clustering algorithms on the codes a finished sweep saved in OUT/embeddings, into OUT/cluster_methods.md")
    p.add_argument("--one", nargs=3, help=argparse.SUPPRESS)  # internal: candidate dataset seed
    args = p.parse_args(argv)
    if args.cluster_methods:
        report = Path(args.out) / "cluster_methods.md"
        report.write_text(compare_cluster_methods(Path(args.out)))
        print(report.read_text())
        return 0
    if args.one:
        name, dataset, seed = args.one
        emb = None
        if not args.posthoc_test:
            emb = Path(args.out) / "embeddings" / f"{dataset}-{list(CANDIDATES).index(name)}-{seed}.npz"
            emb.parent.mkdir(parents=True, exist_ok=True)
        print(json.dumps(run_one(name, dataset, int(seed), emb, score_test=args.posthoc_test)))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = out / ("sweep_test.jsonl" if args.posthoc_test else "sweep.jsonl")
    done = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    finished = {(r["candidate"], r["dataset"], r["seed"]) for r in done}
    todo = [(c, d, s) for d in args.datasets for c in args.candidates for s in args.seeds if (c, d, s) not in finished]
    free_cores = list(range(args.cores))

    def work(job: tuple[str, str, int]) -> None:
        core = free_cores.pop()
        try:
            env = {**os.environ, "OMP_NUM_THREADS": "1", "CAE_NUM_THREADS": "1"}
            cmd = ["taskset", "-c", str(core), sys.executable, __file__, "--one", *map(str, job), "--out", str(out)]
            cmd += ["--posthoc-test"] if args.posthoc_test else []
            res = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if res.returncode != 0:
                print(f"failed {job}:\n{res.stderr[-1500:]}", file=sys.stderr, flush=True)
                return
            row = json.loads(res.stdout.strip().splitlines()[-1])
            with log.open("a") as f:
                f.write(json.dumps(row) + "\n")
            test = f", test kNN {row['test_knn_acc']:.3f}" if args.posthoc_test else ""
            print(f"{job}: {row['train_seconds']:.0f} s, val kNN {row['val_knn_acc']:.3f}{test}", flush=True)
        finally:
            free_cores.append(core)

    with ThreadPoolExecutor(args.cores) as pool:
        list(pool.map(work, todo))
    rows = [json.loads(line) for line in log.read_text().splitlines()]
    if args.posthoc_test:
        sweep_log = out / "sweep.jsonl"
        val_rows = [json.loads(line) for line in sweep_log.read_text().splitlines()] if sweep_log.exists() else []
        report = out / "sweep_test.md"
        report.write_text(summarise_test(val_rows, rows))
    else:
        report = out / "sweep.md"
        report.write_text(summarise(rows))
    print(report.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
