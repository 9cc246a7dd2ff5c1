"""What every figure shares: draw into the caller's axis (or a new figure), and name the classes on it."""

from __future__ import annotations

from typing import Any

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def new_ax(ax: Axes | None, figsize: tuple[float, float], layout: str = "constrained") -> tuple[Figure, Axes]:
    """Return ``(ax.figure, ax)``, or a new figure with one axis of size ``figsize`` when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout=layout)
    return fig, ax


def class_name(label: Any, class_names: Any = None) -> str:
    """The name of an integer class label, or the label itself when no (matching) name is given."""
    if class_names is None:
        return str(label)
    try:
        return str(class_names[int(label)])
    except (IndexError, KeyError, TypeError, ValueError):
        return str(label)
