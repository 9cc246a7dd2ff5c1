"""Markdown tables: the one table writer of cae-lib (results files, the command line's reports, the notebooks).

    >>> print(markdown_table([{"codes": "z", "kNN acc": 0.88123}, {"codes": "h", "kNN acc": None}]))
    | codes | kNN acc |
    |---|---|
    | z | 0.881 |
    | h | – |

The result is a ``str`` that a notebook displays as a table (it has ``_repr_markdown_``).
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np


class MarkdownTable(str):
    """Markdown text that Jupyter renders as a table; ``.data`` is the text (as ``IPython.display.Markdown`` has it)."""

    def _repr_markdown_(self) -> str:
        return str(self)

    @property
    def data(self) -> str:
        return str(self)


def _cell(value: Any, digits: int) -> str:
    if value is None:
        return "–"
    if isinstance(value, (float, np.floating)):
        return f"{value:.{digits}f}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[Mapping[str, Any]], digits: int = 3) -> MarkdownTable:
    """A Markdown table with one row per mapping; the columns are the keys, in first-seen order.

    Floats are printed with ``digits`` decimals, ``None`` as a dash, anything else with ``str``
    (a ``|`` inside a cell is escaped).
    """
    if not rows:
        raise ValueError("markdown_table needs at least one row (a dict of column -> value)")
    columns = list(dict.fromkeys(key for row in rows for key in row))
    lines = ["| " + " | ".join(_cell(c, digits) for c in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row.get(c), digits) for c in columns) + " |" for row in rows]
    return MarkdownTable("\n".join(lines))
