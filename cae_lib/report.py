"""Kept for old imports: the ``demo`` command (the main job) lives in :mod:`cae_lib.commands.demo`;
``BENCHMARK_DIR``, :func:`pixel_baselines` and :func:`results_table` in :mod:`cae_lib.comparison`.
"""

from cae_lib.commands.demo import (
    _save,  # noqa: F401  (private, kept for old imports)
    resolve_default_dataset,
    run_demo,
)
from cae_lib.comparison import BENCHMARK_DIR, pixel_baselines, results_table

__all__ = ["BENCHMARK_DIR", "pixel_baselines", "resolve_default_dataset", "results_table", "run_demo"]
