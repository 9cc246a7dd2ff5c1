"""The widget shell every explorer shares, its controls, and two helpers for image inputs and figures.

- :class:`Explorer`: controls above an output area; re-renders when a control changes (or when
  **Run** is pressed) and closes each figure after showing it. What it shows is written into the
  output area's ``outputs`` by the kernel, never captured with ``with output:`` (see
  :meth:`Explorer.refresh` for why).
- :func:`slider` / :func:`dropdown`: controls with the settings every explorer uses
  (``continuous_update=False``, so a slow render runs once, when the slider is let go).
- :func:`as_batch`: the first ``n`` of any accepted image input as a float (n, C, H, W) batch.
- :func:`rows_figure`: one labelled row of images per entry, the figure most explorers draw.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import ipywidgets as widgets
import matplotlib.pyplot as plt
import numpy as np
import torch
from IPython import get_ipython
from IPython.core.formatters import DisplayFormatter
from matplotlib.figure import Figure

from cae_lib import plots
from cae_lib.batches import images_of, images_to_float

EXPLORER_TEXT = "Interactive explorer: run this notebook in Jupyter to use its controls."


class Explorer(widgets.VBox):
    """Controls above an output area; ``render(**values)`` is called with the controls' values.

    Args:
        render: ``render(**{name: control.value}) -> Figure`` or ``(Figure, extra)``.
        controls: ``{argument name: widget}``, in display order.
        manual: add a **Run** button and render only when it is pressed (for slow callbacks).
        show_extra: how to display ``extra`` under the figure (e.g. a Markdown table).
        title: a line of text above the controls.

    Attributes:
        figure: the last figure shown (closed, but still inspectable); ``result``: the last
        return value of ``render``.

    The first render happens at construction and raises on error (so a notebook run fails
    loudly); later renders, triggered by the controls, print the error in the output area instead.
    """

    def __init__(
        self,
        render: Callable[..., Any],
        controls: Mapping[str, widgets.Widget],
        manual: bool = False,
        show_extra: Callable[[Any], Any] | None = None,
        title: str | None = None,
    ) -> None:
        self._render = render
        self.controls = dict(controls)
        self.output = widgets.Output()
        self._show_extra = show_extra
        self.figure: Figure | None = None
        self.result: Any = None
        rows: list[widgets.Widget] = []
        if title:
            rows.append(widgets.HTML(f"<b>{title}</b>"))
        rows.append(widgets.HBox(list(self.controls.values()), layout=widgets.Layout(flex_flow="row wrap")))
        self.button: widgets.Button | None = None
        if manual:
            self.button = widgets.Button(description="Run", button_style="primary", icon="play")
            self.button.on_click(lambda _: self.refresh())
            rows.append(self.button)
        else:
            for control in self.controls.values():
                control.observe(lambda _change: self.refresh(), names="value")
        rows.append(self.output)
        super().__init__(rows)
        self.refresh(raise_errors=True)

    def values(self) -> dict[str, Any]:
        """The current value of every control, by argument name."""
        return {name: control.value for name, control in self.controls.items()}

    def refresh(self, raise_errors: bool = False) -> Any:
        """Call the render function with the current values and show what it returns.

        The output area gets its new content in one assignment to ``self.output.outputs`` (a kernel
        -> front end update on IOPub), not through ``with self.output: display(...)``. Capturing
        makes a notebook runner that mimics the Output widget (nbclient, so papermill and
        ``tools/run_notebooks.py``) send each captured output back to the kernel on the shell
        socket *while it waits on that socket for the cell's execute_reply*. jupyter_client sends it
        through a synchronous shadow of the asyncio socket, which can swallow the wake-up for a reply
        that has just arrived: the kernel is idle, the reply sits unread until the cell timeout fires,
        and without one the run waits forever (jupyter/nbclient#312). Assigning ``outputs`` sends
        nothing back.
        Being one assignment, it also replaces the old figure without a flash of empty area.
        """
        open_before = set(plt.get_fignums())
        try:
            result = self._render(**self.values())
        except Exception as err:  # shown to the student, not lost in the kernel log
            for num in set(plt.get_fignums()) - open_before:  # a half-drawn figure
                plt.close(num)
            if raise_errors:
                raise
            self.output.outputs = ({"output_type": "stream", "name": "stderr", "text": f"{type(err).__name__}: {err}\n"},)
            return None
        fig, extra = result if isinstance(result, tuple) else (result, None)
        shown = [display_data(fig)]
        plt.close(fig)
        if extra is not None and self._show_extra is not None:
            shown.append(display_data(self._show_extra(extra)))
        self.output.outputs = tuple(shown)
        self.figure, self.result = fig, result
        return result

    def __repr__(self) -> str:  # the text a saved notebook shows where the live widget was
        return EXPLORER_TEXT


def display_data(obj: Any) -> dict[str, Any]:
    """``obj`` as one entry of an Output widget's ``outputs``: a ``display_data`` output, formatted as
    ``IPython.display.display(obj)`` would format it here.

    In a kernel this uses the shell's formatters (so a matplotlib figure becomes the same
    ``image/png`` the inline backend shows); outside IPython, a plain formatter (text, and the
    ``_repr_*_`` methods of the object).
    """
    shell = get_ipython()
    formatter = shell.display_formatter if shell is not None else DisplayFormatter()
    data, metadata = formatter.format(obj)
    return {"output_type": "display_data", "data": data, "metadata": metadata}


def slider(kind: type, value: Any, lo: Any, hi: Any, step: Any, description: str) -> widgets.Widget:
    """An ``ipywidgets`` slider of ``kind`` (e.g. ``IntSlider``) that reports only when let go."""
    return kind(value=value, min=lo, max=hi, step=step, description=description, continuous_update=False,
                style={"description_width": "initial"})


def dropdown(options: Sequence[Any], value: Any, description: str) -> widgets.Dropdown:
    """A dropdown of ``options`` (values, or ``(label, value)`` pairs) with its description in full."""
    return widgets.Dropdown(options=options, value=value, description=description, style={"description_width": "initial"})


def as_batch(images: Any, n: int) -> torch.Tensor:
    """The first ``n`` images -> float (n, C, H, W) in [0, 1].

    Args:
        images: an ImageData, uint8 in MedMNIST layout (N, H, W) / (N, H, W, C), or a float
            tensor (N, C, H, W), which passes through as it is (detached, on the CPU).

    Only those ``n`` rows are converted (by :func:`cae_lib.batches.images_to_float`), so a
    large dataset is never copied to floats whole.
    """
    if isinstance(images, torch.Tensor) and images.dtype != torch.uint8:
        return images[:n].detach().float().cpu()
    return images_to_float(images_of(images)[:n])


def rows_figure(rows: Sequence[Any], row_labels: Sequence[str], title: str) -> Figure:
    """One row of images per entry of ``rows`` (each (n, ...) uint8 / float images), labelled on the left."""
    lengths = [len(r) for r in rows]
    stacked = np.concatenate([plots.to_display(r) for r in rows])
    starts = np.cumsum([0] + lengths[:-1])
    indices = [np.arange(s, s + n) for s, n in zip(starts, lengths)]
    fig = plots.cluster_montages(stacked, list(range(len(rows))), indices, titles=list(row_labels))
    fig.suptitle(title, fontsize=10)
    return fig
