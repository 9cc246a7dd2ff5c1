"""The one helper every figure function shares: draw into the caller's axis, or make a new figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.axes import Axes
from matplotlib.figure import Figure


def new_ax(ax: Axes | None, figsize: tuple[float, float], layout: str = "constrained") -> tuple[Figure, Axes]:
    """Return ``(ax.figure, ax)``, or a new figure with one axis of size ``figsize`` when ``ax`` is None."""
    if ax is not None:
        return ax.figure, ax
    fig, ax = plt.subplots(figsize=figsize, layout=layout)
    return fig, ax
