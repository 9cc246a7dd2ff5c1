"""Kept for old imports: the ``benchmark`` command now lives in :mod:`cae_lib.commands.benchmark`
and its rows (methods, one run, tables, reference numbers) in :mod:`cae_lib.comparison`.

``python -m cae_lib.benchmark --one METHOD ...`` still runs one row, like
``python -m cae_lib.commands.benchmark_worker --one METHOD ...``.
"""

from cae_lib.commands.benchmark import run_benchmark, run_one_isolated
from cae_lib.commands.benchmark_worker import _main_one  # runs below with ``python -m cae_lib.benchmark``
from cae_lib.comparison import (
    LABEL_FRACTIONS,
    METHODS,
    REFERENCES,
    TABLE_METRICS,
    UNSUPERVISED,
    _pixels,  # noqa: F401  (private, kept for old imports)
    _probe_label_efficiency,  # noqa: F401
    _supervised_label_efficiency,  # noqa: F401
    headline_rows,
    label_efficiency_curves,
    markdown_table,
    run_one,
    summarize_runs,
)

__all__ = [
    "LABEL_FRACTIONS",
    "METHODS",
    "REFERENCES",
    "TABLE_METRICS",
    "UNSUPERVISED",
    "headline_rows",
    "label_efficiency_curves",
    "markdown_table",
    "run_benchmark",
    "run_one",
    "run_one_isolated",
    "summarize_runs",
]

if __name__ == "__main__":
    raise SystemExit(_main_one())
