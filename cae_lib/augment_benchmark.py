"""Kept for old imports: the ``augment-benchmark`` command lives in :mod:`cae_lib.commands.augment_benchmark`."""

from cae_lib.commands.augment_benchmark import (
    ARMS,
    _epochs_for,  # noqa: F401  (private, kept for old imports)
    conclusion,
    markdown,
    run_augment_benchmark,
    summarize,
)

__all__ = ["ARMS", "conclusion", "markdown", "run_augment_benchmark", "summarize"]
