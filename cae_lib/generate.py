"""``python -m cae_lib sample``: decode new labelled images from a trained model's latent space.

Writes an image grid (PNG), a JSON file beside it with the settings and the label/confidence
summary, and optionally the samples as a MedMNIST-layout ``.npz`` that loads back through
:func:`cae_lib.data.load_dataset` like any other dataset.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

SAMPLERS = ("class-gmm", "gaussian", "prior")


def make_sampler(name: str) -> Any:
    """A fresh, unfitted sampler by CLI name."""
    from cae_lib.sampling import ClassGMMSampler, GaussianSampler, PriorSampler

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
) -> dict[str, Any]:
    """Fit ``sampler`` on the train-split codes of the checkpoint's dataset and decode ``n`` samples.

    The class-conditional sampler is fitted on the true train labels, so ``label`` is a class id
    of the dataset (its valid values are listed when a wrong one is given).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from cae_lib import plots
    from cae_lib.checkpoint import load_checkpoint
    from cae_lib.data import load_dataset
    from cae_lib.sampling import check_decoder, save_samples_npz
    from cae_lib.utils import atomic_path, write_json

    if n <= 0:
        raise ValueError(f"--n must be a positive number of samples, got {n}")
    model, cfg, _ = load_checkpoint(checkpoint)
    check_decoder(model, cfg.model.latent_dim)
    train = load_dataset(cfg.dataset, split="train", size=cfg.size, data_dir=data_dir)
    fitted = make_sampler(sampler).fit_from_model(model, train)
    samples = fitted.sample(model, n, label=label, seed=seed, scale=scale)
    names = list(train.class_names)
    titles = [names[int(l)][:10] if 0 <= int(l) < len(names) else "?" for l in samples.labels]
    fig = plots.image_grid(samples.images, nrow=min(8, n), titles=titles)
    fig.suptitle(f"{cfg.dataset}: {n} samples from {sampler} (seed {seed}, scale {scale})")
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    counts = {names[int(c)] if 0 <= int(c) < len(names) else str(c): int((samples.labels == c).sum()) for c in np.unique(samples.labels)}
    summary = {
        "checkpoint": str(checkpoint),
        "sampler": sampler,
        "n": n,
        "label": label,
        "seed": seed,
        "scale": scale,
        "label_counts": counts,
        "mean_confidence": float(np.mean(samples.confidence)),
        "grid": str(out),
        "npz": str(npz) if npz else None,
        "train_config": cfg.to_dict(),
    }
    write_json(out.with_suffix(".json"), summary)
    if npz:
        save_samples_npz(samples, npz, class_names=names, metadata={"sampler": sampler, "seed": seed, "scale": scale, "checkpoint": str(checkpoint)})
    print(f"{n} samples ({', '.join(f'{k}: {v}' for k, v in counts.items())}; mean label confidence {summary['mean_confidence']:.2f})")
    print(f"grid: {out}  settings: {out.with_suffix('.json')}" + (f"  npz: {npz}" if npz else ""))
    return summary
