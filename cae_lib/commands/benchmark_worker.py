"""The worker behind the ``benchmark`` command: one row of the table, one seed, in its own process.

``python -m cae_lib.commands.benchmark_worker --one METHOD --dataset NAME --seed S --json OUT``
runs :func:`cae_lib.comparison.run_one` and writes its result to ``OUT``. It imports only what a
row needs (no plotting), so the peak memory recorded for the row is the row's own.
"""

from __future__ import annotations

import argparse
from typing import Sequence

from cae_lib.comparison import METHODS, run_one
from cae_lib.files import write_json
from cae_lib.machine import configure_threads


def _main_one(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="run one benchmark row (internal; used by run_benchmark)")
    p.add_argument("--one", required=True, choices=list(METHODS))
    p.add_argument("--dataset", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--size", type=int, default=28)
    p.add_argument("--recipe", default="default")
    p.add_argument("--json", required=True)
    a = p.parse_args(argv)
    configure_threads()  # the same thread count as the command that started it (CAE_NUM_THREADS, CPU quota)
    write_json(a.json, run_one(a.one, a.dataset, a.seed, a.data_dir, a.epochs, size=a.size, recipe=a.recipe))
    return 0


if __name__ == "__main__":
    raise SystemExit(_main_one())
