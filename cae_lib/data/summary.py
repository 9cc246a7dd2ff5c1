"""Describing datasets: what is available, and what a split looks like (class balance, pixel stats).

``list_datasets`` + ``format_dataset_table`` back ``python -m cae_lib datasets``; ``summarize``
gives the numbers a notebook states before any training, most importantly the *majority-class
floor*: the accuracy of always guessing the most common class, which every accuracy must beat.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

from pathlib import Path

import numpy as np

from cae_lib.data.download import MIN_FILE_BYTES
from cae_lib.data.paths import resolve_data_dir
from cae_lib.data.loading import ImageData, load_labels
from cae_lib.data.npz import npz_splits
from cae_lib.data.registry import SPLITS, dataset_names, get_info, is_registered


def list_datasets(data_dir: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One row per registry dataset, with what is on disk in the data folder (nothing is hashed or downloaded).

    Each row: ``name``, ``display_name``, ``task``, ``n_classes``, ``channels``, ``train``, ``val``,
    ``test`` (official split sizes), ``local_sizes`` (sizes whose file is in the data folder; always
    ``[28]`` for the bundled ``digits``), ``available_28`` (bool), ``supported`` (False for
    multi-label ChestMNIST), ``bundled`` (True for ``digits``), ``data_dir``.
    """
    folder = resolve_data_dir(data_dir)
    rows = []
    for name in dataset_names():
        info = get_info(name)
        if info.is_bundled:
            local = list(info.sizes)
        else:
            local = [s for s in info.sizes if _present(folder / info.filename_for(s))]
        rows.append(
            {
                "name": info.name,
                "display_name": info.display_name,
                "task": info.task,
                "n_classes": info.n_classes,
                "channels": info.n_channels,
                **{s: int(info.n_samples.get(s, 0)) for s in SPLITS},
                "local_sizes": local,
                "available_28": 28 in local,
                "supported": not info.is_multi_label,
                "bundled": info.is_bundled,
                "data_dir": str(folder),
            }
        )
    return rows


def _present(path: os.PathLike) -> bool:
    try:
        return os.path.isfile(path) and os.path.getsize(path) >= MIN_FILE_BYTES
    except OSError:
        return False


def format_dataset_table(rows: list[dict[str, Any]]) -> str:
    """A plain-text table of :func:`list_datasets` rows, with the data folder underneath."""
    header = ("name", "task", "classes", "ch", "train", "val", "test", "on disk (px)")
    lines = []
    for r in rows:
        if r.get("bundled"):
            local = "bundled"
        else:
            local = ", ".join(map(str, r["local_sizes"])) or "-"
        task = r["task"] + ("" if r.get("supported", True) else " (not supported)")
        lines.append((r["name"], task, str(r["n_classes"]), str(r["channels"]),
                      f"{r['train']:,}", f"{r['val']:,}", f"{r['test']:,}", local))
    widths = [max(len(h), *(len(line[i]) for line in lines)) if lines else len(h) for i, h in enumerate(header)]
    right = {2, 3, 4, 5, 6}

    def fmt(cells: tuple[str, ...]) -> str:
        padded = (c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))
        return "  ".join(padded).rstrip()

    out = [fmt(header), fmt(tuple("-" * w for w in widths))] + [fmt(line) for line in lines]
    if rows and "data_dir" in rows[0]:
        out.append("")
        out.append(f"data folder: {rows[0]['data_dir']}  (change with --data-dir or the CAE_DATA_DIR variable)")
        out.append("missing files are downloaded on first use; offline, use --dataset digits (in Python: fallback='digits')")
    return "\n".join(out)


def _class_stats(labels: np.ndarray, n_classes: int) -> dict[str, Any]:
    counts = np.bincount(labels, minlength=n_classes)[:n_classes] if labels.size else np.zeros(n_classes, int)
    n = int(counts.sum())
    return {
        "n": n,
        "counts": [int(c) for c in counts],
        "fractions": [float(c / n) if n else 0.0 for c in counts],
        "majority_class": int(counts.argmax()) if n else None,
        "majority_floor": float(counts.max() / n) if n else float("nan"),
    }


def summarize(data: ImageData) -> dict[str, Any]:
    """Class balance and pixel statistics of one split.

    Returns a dict with ``name``, ``split``, ``n``, ``size``, ``n_channels``, ``n_classes``,
    ``class_names``, ``counts`` (per class), ``fractions``, ``majority_class``, ``majority_floor``
    (the largest class fraction: the accuracy of always guessing that class), and ``pixel_mean`` /
    ``pixel_std`` (per channel, on the [0, 1] scale used by ``to_tensor``). Exact and memory-light:
    the pixel statistics come from a 256-bin histogram per channel.
    """
    stats = _class_stats(data.labels, data.n_classes)
    images = data.images if data.images.ndim == 4 else data.images[..., None]
    means, stds = [], []
    values = np.arange(256, dtype=np.float64) / 255.0
    for c in range(images.shape[-1]):
        hist = np.bincount(images[..., c].reshape(-1), minlength=256).astype(np.float64)
        total = hist.sum()
        mean = float((hist * values).sum() / total) if total else float("nan")
        var = float((hist * (values - mean) ** 2).sum() / total) if total else float("nan")
        means.append(mean)
        stds.append(var**0.5)
    return {
        "name": data.name,
        "split": data.split,
        "size": data.size,
        "n_channels": data.n_channels,
        "n_classes": data.n_classes,
        "class_names": list(data.class_names),
        **stats,
        "pixel_mean": means,
        "pixel_std": stds,
    }


def class_balance(
    name: str | os.PathLike | Mapping[str, Any],
    data_dir: str | os.PathLike | None = None,
    size: int = 28,
    download: bool = False,
) -> dict[str, dict[str, Any]]:
    """Class counts and majority-class floor of every split, reading labels only.

    ``name`` is a dataset (its files' labels are read), or splits already loaded,
    ``{"train": ImageData, "val": ..., "test": ...}`` (nothing is read again).

    Returns:
        ``{"train": {...}, "val": {...}, "test": {...}}``, each with ``n``, ``counts``, ``fractions``,
        ``majority_class``, ``majority_floor`` (and ``class_names``).
    """
    if isinstance(name, Mapping):
        return {split: {"class_names": list(d.class_names), **_class_stats(np.asarray(d.labels).reshape(-1), len(d.class_names))}
                for split, d in name.items()}
    splits = SPLITS
    if not isinstance(name, str) or not is_registered(name):
        path = Path(name).expanduser()
        if path.is_file():  # your own .npz may hold only some splits
            splits = npz_splits(path)
    out = {}
    for split in splits:
        labels, class_names = load_labels(name, split, size, data_dir, download)
        out[split] = {"class_names": list(class_names), **_class_stats(labels, len(class_names))}
    return out
