"""Bar and line charts of numbers: class balance with its floor, results with error bars, label efficiency.

Each chart draws the majority-class floor where one is given: an accuracy means little until it
stands beside the accuracy of always predicting the biggest class.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cae_lib.plots.axes import class_name, new_ax


def class_balance(
    counts_by_split: Mapping[str, np.ndarray],
    class_names: Sequence[str] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Grouped bars of the class fractions in each split, with each split's majority floor.

    Args:
        counts_by_split: ``{"train": (n_classes,) counts, "test": ...}``.
        class_names: x tick labels.

    The dashed line of each split marks its majority-class floor: the accuracy of always
    predicting the biggest class, which every reported accuracy must beat.
    """
    fig, ax = new_ax(ax, (7, 4))
    n_splits = len(counts_by_split)
    width = 0.8 / max(n_splits, 1)
    for i, (split, counts) in enumerate(counts_by_split.items()):
        counts = np.asarray(counts, dtype=float)
        frac = counts / counts.sum()
        xs = np.arange(len(counts)) + (i - (n_splits - 1) / 2) * width
        floor = frac.max()
        bars = ax.bar(xs, frac, width, label=f"{split} (n={int(counts.sum())}, floor {floor:.3f})")
        ax.axhline(floor, ls="--", lw=1, color=bars.patches[0].get_facecolor())
    n_classes = len(next(iter(counts_by_split.values())))
    ax.set_xticks(np.arange(n_classes), [class_name(c, class_names) for c in range(n_classes)],
                  rotation=30 if n_classes > 4 else 0, ha="right" if n_classes > 4 else "center")
    ax.set_ylabel("fraction of split")
    ax.set_title("Class balance (dashed: majority-class floor)")
    ax.legend(fontsize=8)
    return fig


def results_bar_chart(
    table_rows: Sequence[Mapping[str, Any]],
    metric: str = "hungarian_acc",
    error: str = "sd",
    floor: float | None = None,
    references: Mapping[str, float] | None = None,
    ax: Axes | None = None,
) -> Figure:
    """Bars of ``<metric>_mean`` ± ``<metric>_<error>`` per method, the floor, and published numbers.

    Args:
        table_rows: e.g. ``[{"method": "CAE", "hungarian_acc_mean": 0.85, "hungarian_acc_sd": 0.01}]``;
            a row with a plain ``metric`` key (single run) is drawn without an error bar.
        metric: which metric to plot.
        error: suffix of the error column (``"sd"``, ``"sem"``, ...).
        floor: majority-class floor, drawn as a dashed horizontal line.
        references: published numbers ``{name: value}``, drawn as stars; a name equal to a
            method puts its star on that method's bar, other names get their own position.
    """
    fig, ax = new_ax(ax, (1.5 + 0.9 * (len(table_rows) + len(references or {})), 4))
    names = [str(r["method"]) for r in table_rows]
    means = [float(r.get(f"{metric}_mean", r.get(metric, np.nan))) for r in table_rows]
    errs = [float(r[f"{metric}_{error}"]) if r.get(f"{metric}_{error}") is not None else np.nan for r in table_rows]
    has_errors = not all(np.isnan(errs))
    ax.bar(range(len(names)), means, yerr=errs if has_errors else None, capsize=4, color="C0", alpha=0.8)
    for i, m in enumerate(means):
        ax.annotate(f"{m:.3f}", (i, m), xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
    labels = list(names)
    for j, (ref_name, value) in enumerate((references or {}).items()):
        if ref_name in names:
            x = names.index(ref_name)
        else:
            x = len(labels)
            labels.append(f"{ref_name}\n(published)")
        ax.plot(x, value, marker="*", ms=13, color="C3", ls="none", label="published" if j == 0 else None)
    if floor is not None:
        ax.axhline(floor, ls="--", color="gray", label=f"majority-class floor {floor:.3f}")
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    spread = np.nan_to_num(errs)
    ends = [m + e for m, e in zip(means, spread)] + [m - e for m, e in zip(means, spread)] + list((references or {}).values())
    ends = [v for v in ends + ([floor] if floor is not None else []) if np.isfinite(v)]
    low, high = min([0.0, *ends]), max([0.0, *ends])
    pad = 0.1 * (high - low) or 0.1  # room for the value labels under the title
    ax.set_ylim(low - pad if low < 0 else 0.0, high + pad if high > 0 else 0.0)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric} (mean ± {error})" if has_errors else metric)
    if floor is not None or references:
        ax.legend(fontsize=8, loc="lower right")
    return fig


def label_efficiency(
    curves: Mapping[str, Mapping[float, tuple[float, float]]],
    ax: Axes | None = None,
    floor: float | None = None,
    ylabel: str = "test accuracy",
) -> Figure:
    """Accuracy against the fraction of training labels used (log x axis), one line per method.

    Args:
        curves: ``{method: {fraction: (mean, sd)}}``,
            e.g. ``{"CAE probe": {0.01: (0.80, 0.02), 1.0: (0.86, 0.01)}}``; an sd of ``None``
            (a single run) draws the point without an error bar.
        floor: optional majority-class floor, drawn dashed.
    """
    fig, ax = new_ax(ax, (6, 4))
    for method, points in curves.items():
        fracs = sorted(points)
        mean = [points[f][0] for f in fracs]
        sd = [np.nan if points[f][1] is None else points[f][1] for f in fracs]
        ax.errorbar(fracs, mean, yerr=None if all(np.isnan(sd)) else sd, marker="o", capsize=3, label=method)
    if floor is not None:
        ax.axhline(floor, ls="--", color="gray", label=f"majority-class floor {floor:.3f}")
    ax.set_xscale("log")
    all_fracs = sorted({f for points in curves.values() for f in points})
    ax.set_xticks(all_fracs, [f"{f:.0%}" if f >= 0.01 else f"{f:.1%}" for f in all_fracs])
    ax.minorticks_off()
    ax.set(xlabel="fraction of training labels", ylabel=ylabel, title="Label efficiency")
    if curves or floor is not None:
        ax.legend(fontsize=8)
    return fig
