"""How much of the kNN drop from the validation to the test split is the class-prior shift? (a benchmark, not a test)

PneumoniaMNIST's validation split shares the training split's class balance (74 % pneumonia); the
official test split has 62.5 %. An accuracy mixes the per-class recalls with the class shares,

    accuracy = sum over classes c of share(c) x recall(c),

so a split with another balance gets another accuracy from the same classifier. This script trains
the default CAE (one per seed), fits kNN (k = 10, cosine, on z, as in the evaluation protocol) on
the training codes, and reports per split the per-class recalls, the accuracy, and the accuracy the
split *would* have with the training split's class shares. If the test recalls equal the
validation recalls, the whole drop is the prior shift; if a class's recall falls on test, the
images themselves differ (covariate shift), and no reweighting recovers it.

Nothing here is chosen on the test split: the classifier is the protocol's, and the reweighting
only re-expresses the test recalls at another class balance.

Where the image part comes from, it then asks of the framing: each image's *window scale* is the
zoom of the mean training image that correlates best with it (below 1: the body fills more of the
frame than on average, a closer crop; above 1: a wider field of view). The report gives, per split
and class, the share of close-framed images (window < 0.95) and the kNN recall among close, typical
(0.95-1.05) and wide (>= 1.05) framings, so a class whose close-framed images are rare in training
and common on test shows up as a recall that falls only in that bin.

    CAE_DATA_DIR=../shared/data/medmnist .venv/bin/python benchmarks/prior_shift.py --seeds 0 1 2

Writes ``runs/prior_shift-<time>/prior_shift.{json,md}``; ``--publish`` writes the committed
``benchmarks/results/prior_shift.{json,md}`` (only when asked).
"""

from __future__ import annotations

import argparse
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.neighbors import KNeighborsClassifier

from cae_lib.config import CAEConfig
from cae_lib.batches import images_to_float
from cae_lib.embed import embed
from cae_lib.evaluate import load_splits
from cae_lib.experiment import build_trainer, config_for_data
from cae_lib.files import write_json, write_text

PUBLISHED = Path(__file__).resolve().parent / "results"


def recalls(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """Per-class recall, (n_classes,): the share of each class's images predicted as that class."""
    return np.array([float(np.mean(y_pred[y_true == c] == c)) for c in classes])


def split_row(y_true: np.ndarray, y_pred: np.ndarray, classes: np.ndarray, train_shares: np.ndarray) -> dict[str, Any]:
    """Accuracy, per-class shares and recalls of one split, and its accuracy at the training shares."""
    r = recalls(y_true, y_pred, classes)
    shares = np.array([float(np.mean(y_true == c)) for c in classes])
    return {"accuracy": float(np.mean(y_true == y_pred)), "shares": shares.tolist(), "recalls": r.tolist(),
            "accuracy_at_train_shares": float(train_shares @ r)}


#: Window scales tried by :func:`framing_scale`, and the edges of the close / typical / wide bins.
WINDOWS = np.round(np.arange(0.75, 1.301, 0.05), 2)
FRAMING_BINS = (("close", 0.0, 0.95), ("typical", 0.95, 1.05), ("wide", 1.05, np.inf))


def centre_zoom(x: torch.Tensor, scale: float) -> torch.Tensor:
    """Zoom every image of ``x: (B, C, H, W)`` about its centre: the output shows a window ``scale``
    times the image's size, resampled to (H, W). Below 1 zooms in (a closer crop), above 1 zooms out
    (the border pixels repeated outside the image), 1 returns the images unchanged.
    """
    theta = torch.tensor([[scale, 0.0, 0.0], [0.0, scale, 0.0]], dtype=x.dtype, device=x.device).expand(x.shape[0], 2, 3)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def grey_floats(images: np.ndarray) -> torch.Tensor:
    """MedMNIST-layout uint8 images (N, H, W[, C]) as (N, 1, H, W) floats in [0, 1], RGB averaged to grey."""
    return images_to_float(images).mean(dim=1, keepdim=True)


def framing_scale(images: np.ndarray, template: torch.Tensor, windows: np.ndarray = WINDOWS) -> np.ndarray:
    """Per image, the window scale whose centred zoom of ``template`` (1, 1, H, W) correlates best with it. (N,)"""
    zooms = torch.cat([centre_zoom(template, float(w)) for w in windows]).flatten(1)
    zooms = zooms - zooms.mean(dim=1, keepdim=True)
    zooms = zooms / zooms.norm(dim=1, keepdim=True)
    x = grey_floats(images).flatten(1)
    x = x - x.mean(dim=1, keepdim=True)
    x = x / x.norm(dim=1, keepdim=True).clamp(min=1e-8)
    return windows[(x @ zooms.T).argmax(dim=1).numpy()]


def framing_row(y_true: np.ndarray, y_pred: np.ndarray, scale: np.ndarray, classes: np.ndarray) -> dict[str, Any]:
    """Per class: the share of close-framed images, and per framing bin the image count and kNN recall (None if empty)."""
    out: dict[str, Any] = {}
    for c in classes:
        is_c = y_true == c
        bins = {}
        for name, low, high in FRAMING_BINS:
            m = is_c & (scale >= low) & (scale < high)
            bins[name] = {"n": int(m.sum()), "recall": float(np.mean(y_pred[m] == c)) if m.any() else None}
        out[str(c)] = {"close_share": float(np.mean(scale[is_c] < FRAMING_BINS[0][2])), "bins": bins}
    return out


def run_seed(dataset: str, seed: int, splits: dict[str, Any], k: int = 10) -> dict[str, Any]:
    cfg = config_for_data(CAEConfig(dataset=dataset), splits["train"])
    cfg.train.seed = seed
    trainer = build_trainer(cfg, splits["train"], progress=False)
    trainer.fit()
    z = {s: embed(trainer.model, d, space="latent") for s, d in splits.items()}
    y = {s: np.asarray(d.labels) for s, d in splits.items()}
    classes = np.unique(y["train"])
    train_shares = np.array([float(np.mean(y["train"] == c)) for c in classes])
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(z["train"], y["train"])
    template = grey_floats(splits["train"].images).mean(dim=0, keepdim=True)
    scale = {s: framing_scale(d.images, template) for s, d in splits.items()}
    pred = {s: knn.predict(z[s]) for s in ("val", "test")}
    return {"seed": seed, "k": k, "train_shares": train_shares.tolist(),
            "train_framing": framing_row(y["train"], y["train"], scale["train"], classes),  # recalls there are trivially 1
            **{s: split_row(y[s], pred[s], classes, train_shares) for s in ("val", "test")},
            "framing": {s: framing_row(y[s], pred[s], scale[s], classes) for s in ("val", "test")}}


def markdown(dataset: str, rows: list[dict[str, Any]], class_names: tuple[str, ...]) -> str:
    names = " / ".join(class_names)
    lines = [f"# Validation vs test kNN on {dataset}: class-prior shift or image shift? ({date.today().isoformat()})", "",
             f"Default CAE, kNN (k = {rows[0]['k']}, cosine) on z fitted on the training codes. Class shares and recalls are given as {names}. "
             "*At training shares* is sum(training share x recall): the accuracy the split would have with the training split's class balance.", "",
             f"Training shares: {' / '.join(f'{s:.3f}' for s in rows[0]['train_shares'])}.", "",
             "| seed | split | shares | recalls | accuracy | accuracy at training shares |", "|---|---|---|---|---|---|"]
    for r in rows:
        for s in ("val", "test"):
            d = r[s]
            lines.append(f"| {r['seed']} | {s} | {' / '.join(f'{v:.3f}' for v in d['shares'])} | {' / '.join(f'{v:.3f}' for v in d['recalls'])} | "
                         f"{d['accuracy']:.3f} | {d['accuracy_at_train_shares']:.3f} |")
    mean = {s: {key: np.mean([r[s][key] for r in rows], axis=0) for key in ("accuracy", "accuracy_at_train_shares", "recalls")} for s in ("val", "test")}
    drop = mean["val"]["accuracy"] - mean["test"]["accuracy"]
    prior_part = mean["test"]["accuracy_at_train_shares"] - mean["test"]["accuracy"]
    lines += ["", f"Mean over {len(rows)} seed(s): val accuracy {mean['val']['accuracy']:.3f}, test {mean['test']['accuracy']:.3f} "
              f"(drop {drop:.3f}); test at the training shares {mean['test']['accuracy_at_train_shares']:.3f}, so the prior shift accounts for "
              f"{prior_part:.3f} of the drop and a change of the per-class recalls for {drop - prior_part:.3f}. "
              f"Mean recalls val {' / '.join(f'{v:.3f}' for v in mean['val']['recalls'])}, test {' / '.join(f'{v:.3f}' for v in mean['test']['recalls'])}."]
    lines += ["", "## Which images: the framing", "",
              "Window scale: the zoom of the mean training image that best matches the image (below 1: a closer crop). "
              "Close < 0.95 <= typical < 1.05 <= wide. kNN recall per framing bin, mean over seeds; n is the number of images in the bin.", "",
              "| split | class | share close-framed | recall close (n) | recall typical (n) | recall wide (n) |", "|---|---|---|---|---|---|"]
    classes = list(rows[0]["framing"]["val"])
    for i, c in enumerate(classes):
        train = rows[0]["train_framing"][c]
        lines.append(f"| train | {class_names[i]} | {train['close_share']:.3f} | – ({train['bins']['close']['n']}) | "
                     f"– ({train['bins']['typical']['n']}) | – ({train['bins']['wide']['n']}) |")
    for s in ("val", "test"):
        for i, c in enumerate(classes):
            per = [r["framing"][s][c] for r in rows]
            cells = []
            for name, _, _ in FRAMING_BINS:
                rec = [p["bins"][name]["recall"] for p in per if p["bins"][name]["recall"] is not None]
                cells.append(f"{np.mean(rec):.3f} ({per[0]['bins'][name]['n']})" if rec else f"– ({per[0]['bins'][name]['n']})")
            lines.append(f"| {s} | {class_names[i]} | {per[0]['close_share']:.3f} | " + " | ".join(cells) + " |")
    neutral = [r["test"]["accuracy"] + framing_gap(r["framing"]["test"]) for r in rows]
    lines += ["", f"If every class's close-framed test images had the recall of that class's other test images, test accuracy would be "
              f"{np.mean(neutral):.3f} instead of {mean['test']['accuracy']:.3f} (mean over seeds)."]
    return "\n".join(lines) + "\n"


def framing_gap(framing: dict[str, Any]) -> float:
    """Accuracy change if each class's close-framed images had the recall of its typical and wide ones (a split's framing_row)."""
    n_total = sum(b["n"] for c in framing.values() for b in c["bins"].values())
    gap = 0.0
    for c in framing.values():
        close, others = c["bins"]["close"], [c["bins"][k] for k in ("typical", "wide") if c["bins"][k]["n"]]
        if close["n"] and others:
            other_recall = sum(b["n"] * b["recall"] for b in others) / sum(b["n"] for b in others)
            gap += close["n"] * (other_recall - close["recall"])
    return gap / n_total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="pneumoniamnist")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--publish", action="store_true", help=f"write the committed results in {PUBLISHED}")
    args = p.parse_args(argv)
    splits = load_splits(args.dataset)
    rows = []
    for seed in args.seeds:
        rows.append(run_seed(args.dataset, seed, splits))
        print(f"seed {seed}: val {rows[-1]['val']['accuracy']:.3f}, test {rows[-1]['test']['accuracy']:.3f}", flush=True)
    out = PUBLISHED if args.publish else Path("runs") / f"prior_shift-{datetime.now():%Y%m%d-%H%M%S}"
    class_names = tuple(splits["train"].class_names or [str(c) for c in range(len(rows[0]["train_shares"]))])
    write_json(out / "prior_shift.json", {"date": date.today().isoformat(), "dataset": args.dataset, "rows": rows})
    md = markdown(args.dataset, rows, class_names)
    write_text(out / "prior_shift.md", md)
    print(md)
    print(f"written to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
