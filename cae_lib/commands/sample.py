"""``python -m cae_lib sample``: decode new labelled images from a trained model's latent space.

Writes an image grid (PNG), a JSON file beside it with the settings and the label/confidence
summary, and optionally the samples as a MedMNIST-layout ``.npz`` that loads back through
:func:`cae_lib.data.load_dataset` like any other dataset.

The sampler is fitted on the data the checkpoint was trained on (found and checked as in
``evaluate``). Every output is checked before any work: none may replace the checkpoint, its
settings file or the data, and an existing file is replaced only with ``--overwrite``.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np

from cae_lib import plots
from cae_lib.checkpoint import check_data_matches, checkpoint_dataset, load_checkpoint
from cae_lib.config import CAEConfig
from cae_lib.commands.options import CHECKPOINT_DATA_HELP, add_data_dir_arg, add_overwrite_arg, non_negative_int, positive_float, positive_int
from cae_lib.commands.outputs import check_distinct, check_output_file, checkpoint_to_read, notes_for, step, warn
from cae_lib.data import load_dataset
from cae_lib.data.mmap import ENV_BUDGET, memory_budget_mb
from cae_lib.data.provenance import looks_like_path
from cae_lib.sampling import ClassGMMSampler, GaussianSampler, PriorSampler, check_decoder, save_samples_npz
from cae_lib.files import atomic_path, write_json

HELP = "decode new labelled images from the latent space"
SAMPLERS = ("class-gmm", "gaussian", "prior")
#: The grid shows at most this many samples (more would be a picture no one can read, and slow to draw).
GRID_MAX = 256
#: Bytes one sample takes per pixel and channel at the peak, while it is made: the decoded float32
#: batches, their concatenation and the uint8 copy (measured: 100,000 28 x 28 grey samples took 0.8 GB).
BYTES_PER_VALUE = 12


def check_sample_count(n: int, cfg: CAEConfig) -> None:
    """Refuse, before any work, more samples than fit in the memory budget (``$CAE_MEMORY_BUDGET_MB``, default 512 MB).

    Every sample is held in memory several times while it is made (:data:`BYTES_PER_VALUE`), so ``n``
    28 x 28 grey samples take ``n`` x 9.4 KB and ``n`` 224 x 224 RGB ones ``n`` x 1.8 MB, on top of the
    0.9 GB or so that the process takes anyway (64 PneumoniaMNIST samples: 0.86-0.88 GB at the peak, 0.65 GB
    of it PyTorch itself); Binder gives 1 to 2 GB in all.

    Raises:
        ValueError: ``n`` samples would take more than the budget; the message gives the largest ``n`` that fits.
    """
    per_sample = cfg.model.in_channels * cfg.model.image_size ** 2 * BYTES_PER_VALUE
    budget_mb = memory_budget_mb()
    if n * per_sample > budget_mb * 2**20:
        most = int(budget_mb * 2**20 // per_sample)
        kind = {1: "grey", 3: "RGB"}.get(cfg.model.in_channels, f"{cfg.model.in_channels}-channel")
        raise ValueError(
            f"--n {n}: {n} {kind} {cfg.model.image_size} x {cfg.model.image_size} samples would take about "
            f"{n * per_sample / 2**20:,.0f} MB of memory while they are made, more than the memory budget of {budget_mb:g} MB ({ENV_BUDGET}). "
            f"Ask for at most --n {most} (run again with another --seed and --npz for more), or raise the budget "
            f"(e.g. {ENV_BUDGET}=2048) if this machine has that much memory free."
        )


def make_sampler(name: str) -> Any:
    """A fresh, unfitted sampler by CLI name."""
    table = {"class-gmm": ClassGMMSampler, "gaussian": GaussianSampler, "prior": PriorSampler}
    if name not in table:
        raise ValueError(f"unknown sampler {name!r}; choose one of {SAMPLERS}")
    return table[name]()


def sample_to_files(
    checkpoint: str | Path,
    n: int = 64,
    label: int | None = None,
    out: str | Path = "samples.png",
    npz: str | Path | None = None,
    sampler: str = "class-gmm",
    seed: int = 0,
    scale: float = 1.0,
    data_dir: str | Path | None = None,
    dataset: str | None = None,
    overwrite: bool = True,
) -> dict[str, Any]:
    """Fit ``sampler`` on the train-split codes of the checkpoint's dataset and decode ``n`` samples.

    The class-conditional sampler is fitted on the true train labels, so ``label`` is a class id
    of the dataset (its valid values are listed when a wrong one is given). ``dataset`` overrides
    where the checkpoint's training data is (when it moved). ``out`` (and its ``.json`` settings
    file) and ``npz`` never replace the checkpoint or the data; with ``overwrite=False`` (the
    command line's default) they never replace an existing file either.
    """
    matplotlib.use("Agg")
    if n <= 0:
        raise ValueError(f"--n must be a positive number of samples, got {n}")
    path = checkpoint_to_read(checkpoint)
    model, cfg, payload = load_checkpoint(path)
    check_sample_count(n, cfg)
    source = checkpoint_dataset(path, cfg, payload, dataset)
    inputs = [path, path.with_suffix(".json")] + ([Path(source)] if looks_like_path(source) else [])
    out = check_output_file(out, "--out", inputs, overwrite, example="samples.png")
    settings = check_output_file(out.with_suffix(".json"), "--out (its settings file, same name .json)", inputs, overwrite)
    npz = check_output_file(npz, "--npz", inputs, overwrite, example="samples.npz") if npz else None
    check_distinct({"--out": out, "the settings file of --out": settings, "--npz": npz})
    check_decoder(model, cfg.model.latent_dim)
    for message in notes_for(path, payload):
        warn(message)
    with step(f"fitting the {sampler} sampler on the codes of {source} (train split)"):
        train = load_dataset(source, split="train", size=cfg.size, data_dir=data_dir)
        check_data_matches(path, cfg, payload, train)
        if len(train) == 0:
            raise ValueError(f"the train split of {source} is empty; the sampler is fitted on the train images")
        if label is not None and not 0 <= label < train.n_classes:
            classes = ", ".join(f"{i} = {name}" for i, name in enumerate(train.class_names))
            raise ValueError(f"--label {label} is not a class of {train.name}; choose one of {classes}")
        with warnings.catch_warnings(record=True) as caught:  # the sampler's warnings, in the CLI's one-line voice
            warnings.simplefilter("always")
            fitted = make_sampler(sampler).fit_from_model(model, train)
            samples = fitted.sample(model, n, label=label, seed=seed, scale=scale)
    for w in caught:
        if issubclass(w.category, UserWarning):
            warn(str(w.message))
    names = list(train.class_names)
    shown = min(n, GRID_MAX)
    titles = [names[int(l)][:10] if 0 <= int(l) < len(names) else "?" for l in samples.labels[:shown]]
    fig = plots.image_grid(samples.images[:shown], nrow=min(8, n), titles=titles)
    first = f"the first {shown} of " if shown < n else ""
    fig.suptitle(f"{train.name}: {first}{n} samples from {sampler} (seed {seed}, scale {scale})")
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    counts = {names[int(c)] if 0 <= int(c) < len(names) else str(c): int((samples.labels == c).sum()) for c in np.unique(samples.labels)}
    summary = {
        "checkpoint": str(path),
        "dataset": source,
        "sampler": sampler,
        "n": n,
        "grid_shows": shown,
        "label": label,
        "seed": seed,
        "scale": scale,
        "label_counts": counts,
        "mean_confidence": float(np.mean(samples.confidence)),
        "grid": str(out),
        "npz": str(npz) if npz else None,
        "train_config": cfg.to_dict(),
    }
    write_json(settings, summary)
    if npz:
        save_samples_npz(samples, npz, class_names=names, metadata={"sampler": sampler, "seed": seed, "scale": scale, "checkpoint": str(path)})
    confidence = f"mean label confidence {summary['mean_confidence']:.2f}"
    if sampler == "prior":  # labelled by the nearest class mean: far off the data that says little
        confidence += ", labels by the nearest class mean, which say little for samples off the data"
    print(f"{n} samples ({', '.join(f'{k}: {v}' for k, v in counts.items())}; {confidence})")
    print(f"grid: {out}  settings: {settings}" + (f"  npz: {npz}" if npz else ""))
    if shown < n:
        where = f"all {n} are in {npz}" if npz else "pass --npz FILE to keep all of them"
        print(f"the grid shows the first {shown} of the {n} samples ({where})")
    return summary


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", required=True, help="a model.pt written by `train`, or its run folder")
    p.add_argument("--n", type=positive_int, default=64, help="number of images to generate")
    p.add_argument("--label", type=int, default=None, help="class to sample (default: all classes in proportion)")
    p.add_argument("--sampler", default="class-gmm", choices=SAMPLERS,
                   help="class-gmm (a Gaussian per class), gaussian (one Gaussian), prior (the VAE prior)")
    p.add_argument("--scale", type=positive_float, default=1.0, help="temperature: multiplies the spread around each mean")
    p.add_argument("--seed", type=non_negative_int, default=0, help="seed of the sampler")
    p.add_argument("--out", default="samples.png", help="PNG image grid; its settings go beside it as .json")
    p.add_argument("--npz", default=None, help="also save the samples as a MedMNIST-layout .npz (default: no .npz)")
    p.add_argument("--dataset", default=None, help=CHECKPOINT_DATA_HELP)
    add_data_dir_arg(p)
    add_overwrite_arg(p, "existing --out / --npz files")


def run(args: argparse.Namespace) -> int:
    sample_to_files(
        checkpoint=args.checkpoint,
        n=args.n,
        label=args.label,
        out=args.out,
        npz=args.npz,
        sampler=args.sampler,
        seed=args.seed,
        scale=args.scale,
        data_dir=args.data_dir,
        dataset=args.dataset,
        overwrite=args.overwrite,
    )
    return 0
