"""Training curves: one panel per loss term (train solid, validation dashed), then positive-pair accuracy."""

from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

#: History keys drawn together in the accuracy panel (with their ``val_`` twins).
ACCURACY_KEYS = ("top1", "top5")
#: History keys that are bookkeeping, not curves.
NOT_PLOTTED = ("epoch", "step", "lr", "time", "seconds", "epoch_time", "peak_memory_mb", "images_per_sec")


History = Mapping[str, Sequence[float]] | Sequence[Mapping[str, float]]


def _history_columns(history: History) -> dict[str, np.ndarray]:
    """A history as ``{key: (epochs,) float array}``; missing or non-numeric values become NaN."""
    if isinstance(history, Mapping):
        return {k: np.asarray(v, dtype=float) for k, v in history.items()}
    keys = list(dict.fromkeys(k for row in history for k in row))
    cols = {}
    for k in keys:
        vals = [row.get(k) for row in history]
        if all(isinstance(v, (int, float, np.number)) or v is None for v in vals):
            cols[k] = np.array([np.nan if v is None else float(v) for v in vals])
    return cols


def training_curves(
    history: History,
    axes: Sequence[Axes] | None = None,
) -> Figure:
    """One panel per loss term, plus a panel for the positive-pair top-1 / top-5 accuracy.

    Args:
        history: a list of per-epoch dicts, e.g.
            ``[{"epoch": 1, "loss": .., "recon": .., "contrastive": .., "kl": .., "top1": .., "top5": ..,
            "val_loss": ..}, ...]``, or a dict of lists. A ``val_<key>`` series shares the panel of
            ``<key>`` (dashed). Missing keys are skipped; ``epoch``, ``lr`` and timings are not plotted.
        axes: optional axes, at least one per panel.

    Top-1 / top-5 is how often the positive view ranks first / in the top five among the
    2N-1 candidates: easier to read than the loss value (chance top-1 is 1 / (2N-1)).
    """
    cols = _history_columns(history)
    epochs = cols.get("epoch", np.arange(1, len(next(iter(cols.values()), [])) + 1))
    panels = _history_panels(cols)
    if not panels:
        raise ValueError(f"nothing to plot: no numeric loss or accuracy keys in history ({list(cols)})")
    if axes is None:
        n_cols = min(len(panels), 3)
        n_rows = -(-len(panels) // n_cols)
        fig, grid = plt.subplots(
            n_rows, n_cols, figsize=(4 * n_cols, 3 * n_rows), squeeze=False, layout="constrained"
        )
        axes = list(grid.ravel())
        for extra in axes[len(panels):]:
            fig.delaxes(extra)
    elif len(axes) < len(panels):
        names = [title for title, _ in panels]
        raise ValueError(f"history has {len(panels)} panels ({names}) but only {len(axes)} axes were given")
    for ax, (title, keys) in zip(axes, panels):
        for key in keys:
            ax.plot(epochs, cols[key], ls="--" if key.startswith("val_") else "-", marker=".", label=key)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    return axes[0].figure


def _history_panels(cols: Mapping[str, np.ndarray]) -> list[tuple[str, list[str]]]:
    """Group history keys into panels: one per loss term (with its val_ twin), then accuracy."""
    usable = [k for k, v in cols.items() if k not in NOT_PLOTTED and np.isfinite(v).any()]
    base = lambda k: k[4:] if k.startswith("val_") else k  # noqa: E731
    panels: dict[str, list[str]] = {}
    for k in usable:
        if base(k) not in ACCURACY_KEYS:
            panels.setdefault(base(k), []).append(k)
    acc = [k for k in usable if base(k) in ACCURACY_KEYS]
    out = list(panels.items())
    if acc:
        out.append(("positive-pair accuracy", acc))
    return out
