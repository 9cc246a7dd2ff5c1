"""``python -m cae_lib augment-benchmark``: do images sampled from the latent space help a classifier
that has few labels?

The paper proposes its model for data augmentation; this experiment measures whether that
works. For each label budget (a class-stratified fraction of the train labels) and seed, the
same-backbone supervised classifier (:class:`cae_lib.baselines.SameBackboneClassifier`) is
trained three ways and scored on the official test split:

(a) ``real``: the labelled subset only;
(b) ``real + generated``: (a) plus N images decoded from a per-class Gaussian fitted to the
    CAE codes of *the labelled subset only* (:class:`cae_lib.sampling.ClassGMMSampler`), each with
    its class label; no other labels are used;
(c) ``real + classic aug``: (a) with classic augmentation (random crops, shifts, rotations,
    exposure jitter, noise, blur: :class:`cae_lib.augment.ContrastiveAugment` at strength 1).

All three get the same number of optimisation steps (300, batch 128) and keep their last epoch (no
validation-based selection, as a low-label user would have no large labelled val set), so none wins
by training longer. The CAE
that generates the images was trained without labels (the shipped checkpoint, or ``checkpoint``).
Quality checks of each generated set (memorisation, agreement of the sampled labels with the (a)
classifier, diversity) are stored beside the scores.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any, Sequence

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from cae_lib import plots
from cae_lib.baselines import SameBackboneClassifier, SupervisedConfig, predict, train_supervised
from cae_lib.checkpoint import check_data_matches, load_checkpoint, resolve_checkpoint_path
from cae_lib.commands.options import add_data_args, add_overwrite_arg, add_progress_arg, positive_int
from cae_lib.commands.options import fraction as fraction_arg
from cae_lib.commands.outputs import check_output_dir
from cae_lib.comparison import BENCHMARK_DIR
from cae_lib.data.provenance import dataset_reference, normalize_reference
from cae_lib.run_folder import default_run_dir
from cae_lib.config import preset
from cae_lib.embed import embed
from cae_lib.evaluate import load_splits
from cae_lib.experiment import config_for_data, find_pretrained
from cae_lib.probes import label_subset
from cae_lib.sampling import ClassGMMSampler, diversity, label_agreement, memorisation_check
from cae_lib.files import save_figure, write_json, write_text
from cae_lib.utils import progress_bar, seed_everything

HELP = "do generated images help a low-label classifier?"

ARMS = {"real": "(a) real labels only", "generated": "(b) real + generated", "classic": "(c) real + classic augmentation"}


def _epochs_for(n_images: int, batch_size: int, steps: int) -> int:
    return max(1, math.ceil(steps * batch_size / max(n_images, 1)))


def run_augment_benchmark(
    dataset: str = "pneumoniamnist",
    fractions: Sequence[float] = (0.01, 0.05, 0.2),
    seeds: int = 3,
    out: str | Path | None = None,
    data_dir: str | Path | None = None,
    n_generated: int | None = None,
    checkpoint: str | Path | None = None,
    steps: int = 300,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the experiment; write ``OUT/<dataset>_augment.{json,md,png}``; return the results.

    Args:
        out: results folder; default a new folder ``runs/<dataset>-augment-<time>`` (the committed
            results are :data:`~cae_lib.comparison.BENCHMARK_DIR`).
        n_generated: generated images per run; default ``max(200, size of the labelled subset)``.
        steps: optimisation steps given to every arm (batch 128).
    """
    matplotlib.use("Agg")
    if int(seeds) < 1 or not fractions or not all(0 < f <= 1 for f in fractions):
        raise ValueError(f"seeds must be at least 1 and every fraction in (0, 1]; got seeds={seeds}, fractions={list(fractions)}")
    splits = load_splits(dataset, data_dir)
    train, test = splits["train"], splits["test"]
    name = train.name
    if checkpoint is None:
        checkpoint = find_pretrained(config_for_data(preset("cae", dataset=name), train))
        if checkpoint is None:
            raise FileNotFoundError(
                f"no shipped CAE checkpoint for {name}; train one (python -m cae_lib train --dataset {dataset}) "
                "and pass its run folder (or its model.pt) as --checkpoint"
            )
    checkpoint = resolve_checkpoint_path(checkpoint)
    model, cae_cfg, payload = load_checkpoint(checkpoint, expected_dataset=dataset_reference(train))
    check_data_matches(checkpoint, cae_cfg, payload, train)
    z_train = embed(model, train)
    runs: list[dict[str, Any]] = []
    jobs = [(f, s) for f in fractions for s in range(seeds)]
    bar = progress_bar(jobs, desc=f"augment-benchmark {name}", disable=not progress)
    for fraction, seed in bar:
        idx = label_subset(train.labels, fraction, seed=seed)
        n_gen = n_generated or max(200, len(idx))
        sampler = ClassGMMSampler(covariance_type="diag" if len(idx) < 100 else "full", reg_covar=1e-3).fit(z_train[idx], train.labels[idx])
        samples = sampler.sample(model, n_gen, seed=seed)
        extra = (samples.images, samples.labels)
        for arm in ARMS:
            n_total = len(idx) + (n_gen if arm == "generated" else 0)
            cfg = SupervisedConfig.for_model("same_backbone", seed=seed, augment_strength=1.0 if arm == "classic" else 0.0)
            cfg.epochs = _epochs_for(n_total, cfg.batch_size, steps)
            seed_everything(seed)
            clf = SameBackboneClassifier(cae_cfg.model, train.n_classes)
            # No validation-based epoch selection: with 1 % of the labels there is no large labelled val set
            # either, and scoring 524 val images after each of hundreds of tiny epochs would dominate the cost.
            res = train_supervised(clf, train, None, test, cfg, label_indices=idx, extra_train=extra if arm == "generated" else None, progress=False)
            row = {"fraction": fraction, "seed": seed, "arm": arm, "n_labels": int(len(idx)), "n_generated": n_gen if arm == "generated" else 0,
                   "epochs": cfg.epochs, **{k: res[k] for k in ("accuracy", "balanced_accuracy", "auc", "train_seconds")}}
            if arm == "real":
                predicted, _ = predict(clf, samples.images)
                mem = memorisation_check(samples.images, train.images[idx], seed=seed)
                row["generated_quality"] = {
                    "label_agreement_with_real_only_classifier": label_agreement(samples.labels, predicted),
                    "mean_label_confidence": float(np.mean(samples.confidence)),
                    "memorised_fraction": float(mem.flagged_fraction),
                    "diversity": diversity(samples.images, seed=seed),
                    "diversity_real": diversity(train.images[idx], seed=seed),
                }
            runs.append(row)
    summary = summarize(runs, fractions)
    floor = float(np.bincount(test.labels).max() / len(test.labels))
    table = markdown(summary, fractions, name, len(test.labels), seeds, floor)
    verdict = conclusion(summary, fractions)
    out = Path(out) if out is not None else default_run_dir(dataset, "augment")
    out.mkdir(parents=True, exist_ok=True)
    result = {"dataset": name, "checkpoint": str(checkpoint), "cae_config": cae_cfg.to_dict(), "steps_per_arm": steps, "fractions": list(fractions),
              "seeds": seeds, "majority_floor": floor, "summary": summary, "conclusion": verdict, "runs": runs}
    write_json(out / f"{name}_augment.json", result)
    write_text(out / f"{name}_augment.md", f"# Augmentation utility: {name}\n\n{table}\n\n**Conclusion.** {verdict}\n")
    curves = {ARMS[a]: {f: (summary[a][str(f)]["accuracy_mean"], summary[a][str(f)]["accuracy_sd"] if seeds > 1 else None) for f in fractions}
              for a in ARMS}
    fig = plots.label_efficiency(curves, floor=floor)
    fig.axes[0].set_title(f"{name}: same-backbone classifier with few labels (test split)")
    save_figure(fig, out / f"{name}_augment.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    print(table)
    print(f"\nConclusion: {verdict}\nresults written to {out}/{name}_augment.{{json,md,png}}")
    return result


def summarize(runs: list[dict[str, Any]], fractions: Sequence[float]) -> dict[str, dict[str, dict[str, float]]]:
    """``{arm: {fraction: {metric_mean, metric_sd}}}`` over seeds (sample sd)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for arm in ARMS:
        out[arm] = {}
        for f in fractions:
            group = [r for r in runs if r["arm"] == arm and r["fraction"] == f]
            cell: dict[str, float] = {"n_labels": group[0]["n_labels"]}
            for m in ("accuracy", "balanced_accuracy", "auc"):
                vals = [r[m] for r in group if r.get(m) is not None]
                if vals:
                    cell[f"{m}_mean"] = float(np.mean(vals))
                    cell[f"{m}_sd"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            out[arm][str(f)] = cell
    return out


def markdown(summary: dict, fractions: Sequence[float], name: str, n_test: int, seeds: int, floor: float) -> str:
    lines = [
        f"Same-backbone classifier, official test split (n = {n_test}), mean ± sd over {seeds} seeds; majority-class floor {floor:.3f}.",
        "",
        "| labels used | " + " | ".join(f"{ARMS[a]}: acc / balanced acc" for a in ARMS) + " |",
        "|---|" + "---|" * len(ARMS),
    ]
    for f in fractions:
        cells = []
        for a in ARMS:
            c = summary[a][str(f)]
            cells.append(f"{c['accuracy_mean']:.3f} ± {c['accuracy_sd']:.3f} / {c['balanced_accuracy_mean']:.3f} ± {c['balanced_accuracy_sd']:.3f}")
        lines.append(f"| {f:.0%} ({summary['real'][str(f)]['n_labels']:.0f} images) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def conclusion(summary: dict, fractions: Sequence[float]) -> str:
    """A plain-language verdict computed from the numbers (an effect counts if it exceeds one sd)."""
    parts = []
    for f in fractions:
        real, gen, cls = (summary[a][str(f)] for a in ("real", "generated", "classic"))
        d_gen = gen["accuracy_mean"] - real["accuracy_mean"]
        d_cls = cls["accuracy_mean"] - real["accuracy_mean"]
        noise = max(real["accuracy_sd"], gen["accuracy_sd"], 1e-9)
        effect = "helped" if d_gen > noise else ("hurt" if d_gen < -noise else "made no difference beyond seed noise")
        parts.append(f"at {f:.0%} labels generated images {effect} ({d_gen:+.3f} accuracy; classic augmentation {d_cls:+.3f})")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def result_files(name: str) -> tuple[str, ...]:
    """The files the experiment on dataset ``name`` writes into its folder."""
    return tuple(f"{name}_augment.{ext}" for ext in ("json", "md", "png"))


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_args(p, size=False)
    p.add_argument("--fractions", type=fraction_arg, nargs="+", default=[0.01, 0.05, 0.2], help="label budgets, as fractions of the train labels")
    p.add_argument("--seeds", type=positive_int, default=3, help="seeds per label budget")
    p.add_argument("--n-generated", type=positive_int, default=None, help="generated images per run (default: as many as the real subset, at least 200)")
    p.add_argument("--checkpoint", default=None, help="CAE checkpoint (model.pt or its run folder) to sample from (default: the shipped one)")
    p.add_argument("--out", default=None, help="results folder (default: a new folder runs/<dataset>-augment-<date-time>)")
    p.add_argument("--publish", action="store_true",
                   help=f"write into the committed results folder {BENCHMARK_DIR.parent.name}/{BENCHMARK_DIR.name}/")
    add_overwrite_arg(p, "result files already in --out")
    add_progress_arg(p)


def check_complete_for_publish(committed: Path, fractions: Sequence[float], seeds: int) -> None:
    """Refuse to let a partial run (fewer fractions or seeds than the committed table) replace it."""
    try:
        old = json.loads(committed.read_text()) if committed.exists() else {}
        old_fractions, old_seeds = [float(f) for f in old.get("fractions", [])], int(old.get("seeds", 0))
    except (OSError, ValueError, TypeError):
        old_fractions, old_seeds = [], 0
    missing = [f for f in old_fractions if f not in [float(x) for x in fractions]]
    if missing or seeds < old_seeds:
        raise ValueError(
            f"--publish with a partial run (missing fractions: {', '.join(map(str, missing)) or 'none'}; {seeds} seed(s) "
            f"where the committed table has {old_seeds}) would replace the full table {committed}. Run every fraction "
            f"with --seeds {max(old_seeds, 3)}, drop --publish, or pass --overwrite if you mean it."
        )


def run(args: argparse.Namespace) -> int:
    if args.publish and args.out:
        raise ValueError("--publish writes into the committed results folder; give --publish or --out, not both")
    out = BENCHMARK_DIR if args.publish else Path(args.out) if args.out else default_run_dir(args.dataset, "augment")
    check_output_dir(out, "--out")
    name = Path(normalize_reference(args.dataset)).name.removesuffix(".npz")
    existing = [f for f in result_files(name) if (out / f).exists()]
    if existing and not args.publish and not args.overwrite:
        raise ValueError(f"{out} already holds results for {name} ({', '.join(existing)}). Pass --overwrite to replace them, or choose another --out.")
    if args.publish and not args.overwrite:
        check_complete_for_publish(out / f"{name}_augment.json", args.fractions, args.seeds)
    run_augment_benchmark(
        dataset=args.dataset,
        fractions=args.fractions,
        seeds=args.seeds,
        out=out,
        data_dir=args.data_dir,
        n_generated=args.n_generated,
        checkpoint=args.checkpoint,
        progress=not args.no_progress,
    )
    return 0
