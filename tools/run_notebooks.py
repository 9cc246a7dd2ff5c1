"""Execute the course notebooks one at a time, on one CPU core, and record their runtime and memory.

    python tools/run_notebooks.py                          # every notebooks/0*.ipynb, default parameters, in place
    python tools/run_notebooks.py notebooks/04_clustering.ipynb
    python tools/run_notebooks.py --param FAST=True --param DATASET='"digits"' --out-dir /tmp/nb --runtimes /tmp/rt.json

For each notebook it

1. injects parameters (``--param NAME=VALUE``, VALUE a Python literal) in a cell tagged
   ``injected-parameters`` right after the cell tagged ``parameters``, as papermill does;
2. appends a cell that prints the kernel's peak resident memory (``getrusage(...).ru_maxrss``);
3. runs the kernel pinned to one CPU core (``--cores 1``: CPU affinity of this process, which the
   kernel inherits, and ``OMP_NUM_THREADS=1`` etc.), under a per-cell timeout;
4. removes the memory cell and every stored widget state (widget views left in outputs: our
   explorers keep their short text; progress bars, whose saved state would be stale, are dropped);
5. saves the notebook with its outputs (in place by default) and writes
   ``notebooks/runtimes.json``: ``{notebook: {"seconds", "peak_mb", "cores", "parameters"}}``.

The same helpers (:func:`inject_parameters`, :func:`execute_notebook`, :func:`strip_widgets`) run
the notebooks in ``tests/test_notebooks.py``.

For the committed outputs, point the notebooks at the data with the environment variable rather than
a parameter (an injected cell is saved with the notebook):

    CAE_DATA_DIR=../shared/data/medmnist python tools/run_notebooks.py
"""

from __future__ import annotations

import argparse
import copy
import ast
import json
import os
import re
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, Mapping

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
EXPLORER_PREFIX = "Interactive explorer"  # text/plain of cae_lib.widgets.Explorer
PEAK_TAG = "peak-memory"
PEAK_CODE = (
    "import resource as _r, sys as _s\n"
    "_k = 1 if _s.platform != 'darwin' else 1024  # ru_maxrss is in KiB on Linux, bytes on macOS\n"
    "print('PEAK_MB', max(_r.getrusage(_r.RUSAGE_SELF).ru_maxrss, _r.getrusage(_r.RUSAGE_CHILDREN).ru_maxrss) / 1024 / _k)"
)


def inject_parameters(nb: nbformat.NotebookNode, parameters: Mapping[str, Any]) -> nbformat.NotebookNode:
    """Insert ``NAME = repr(value)`` lines in a cell tagged ``injected-parameters`` after the ``parameters`` cell.

    A previously injected cell is replaced. Without a ``parameters`` cell the values go first.
    """
    cells = [c for c in nb.cells if "injected-parameters" not in c.get("metadata", {}).get("tags", [])]
    if parameters:
        src = "# Parameters injected by tools/run_notebooks.py\n" + "\n".join(f"{k} = {v!r}" for k, v in parameters.items())
        cell = nbformat.v4.new_code_cell(src)
        cell.metadata["tags"] = ["injected-parameters"]
        where = next((i + 1 for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])), 0)
        cells.insert(where, cell)
    nb.cells = cells
    return nb


def strip_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Remove stored widget state: ``metadata.widgets`` and the widget views in outputs.

    Explorers keep their text/plain placeholder (see ``cae_lib.widgets.EXPLORER_TEXT``); other widget
    outputs (tqdm progress bars) are dropped, since their saved text would be their first, stale state.
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.get("outputs", []):
            data = out.get("data", {})
            if WIDGET_VIEW in data:
                text = data.get("text/plain", "")
                if not str(text).startswith(EXPLORER_PREFIX):
                    continue
                out["data"] = {"text/plain": text}
            kept.append(out)
        cell["outputs"] = kept
    return nb


def _peak_mb(nb: nbformat.NotebookNode) -> float | None:
    for cell in nb.cells:
        if PEAK_TAG in cell.get("metadata", {}).get("tags", []):
            for out in cell.get("outputs", []):
                m = re.search(r"PEAK_MB ([0-9.]+)", out.get("text", ""))
                if m:
                    return float(m.group(1))
    return None


def execute_notebook(
    path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 600,
    measure_memory: bool = True,
    kernel_name: str = "python3",
    retries: int = 1,
) -> tuple[nbformat.NotebookNode, float, float | None]:
    """Run a notebook top to bottom in its own folder; return ``(executed notebook, seconds, peak MB)``.

    Raises ``nbclient.exceptions.CellExecutionError`` on the first failing cell and
    ``CellTimeoutError`` when a cell runs longer than ``timeout`` seconds in each of ``1 + retries``
    attempts (each attempt starts a fresh kernel).
    """
    path = Path(path)
    nb = inject_parameters(nbformat.read(path, as_version=4), dict(parameters or {}))
    if measure_memory:
        cell = nbformat.v4.new_code_cell(PEAK_CODE)
        cell.metadata["tags"] = [PEAK_TAG]
        nb.cells.append(cell)
    fresh = copy.deepcopy(nb)
    for attempt in range(retries + 1):
        nb = copy.deepcopy(fresh)
        client = NotebookClient(
            nb, timeout=timeout, kernel_name=kernel_name, resources={"metadata": {"path": str(path.parent)}},
            record_timing=False,  # widget state is kept while running (nbclient needs it for Output widgets), stripped below
        )
        start = time.perf_counter()
        try:
            client.execute()
            break
        except (CellTimeoutError, DeadKernelError) as exc:
            # nbclient sometimes waits forever for a reply the kernel already sent (a lost ZMQ message,
            # seen here and reported upstream for cells that display widgets): a cell that normally takes
            # seconds then "times out". Run the whole notebook again in a fresh kernel.
            if attempt == retries:
                raise
            print(f"note: {path.name}: {type(exc).__name__} ({str(exc).splitlines()[0][:120]}); retrying in a fresh kernel", flush=True)
    seconds = time.perf_counter() - start
    peak = _peak_mb(nb)
    nb.cells = [c for c in nb.cells if PEAK_TAG not in c.get("metadata", {}).get("tags", [])]
    return strip_widgets(nb), seconds, peak


def pin_to_cores(n: int) -> list[int]:
    """Restrict this process (and so the kernels it starts) to ``n`` CPU cores and one thread per library."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
        os.environ[var] = str(n)
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))[:n]
        os.sched_setaffinity(0, set(cores))
        return cores
    print("note: CPU affinity is not available on this platform; only the thread counts are limited")
    return []


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text  # a bare word: take it as a string (DATASET=digits)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", help="notebooks to run (default: notebooks/0*.ipynb)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="parameter override (a Python literal)")
    p.add_argument("--cores", type=int, default=1, help="CPU cores for the kernel (default 1; 0: no pinning)")
    p.add_argument("--timeout", type=int, default=300, help="seconds one cell may run before the notebook is retried once in a fresh kernel (default 300)")
    p.add_argument("--out-dir", default=None, help="write executed notebooks here instead of in place")
    p.add_argument("--runtimes", default=str(NOTEBOOK_DIR / "runtimes.json"), help="JSON file to update with the measurements")
    args = p.parse_args(argv)

    params = {}
    for item in args.param:
        name, _, value = item.partition("=")
        params[name.strip()] = _literal(value.strip())
    cores = pin_to_cores(args.cores) if args.cores > 0 else []
    paths = [Path(n) for n in args.notebooks] or sorted(NOTEBOOK_DIR.glob("0*.ipynb"))
    runtimes_path = Path(args.runtimes)
    runtimes = json.loads(runtimes_path.read_text()) if runtimes_path.exists() else {}
    print(f"running {len(paths)} notebook(s) on cores {cores or 'all'}" + (f" with {params}" if params else ""))
    failed = 0
    for path in paths:
        print(f"{path.name} ...", end=" ", flush=True)
        try:
            nb, seconds, peak = execute_notebook(path, params, timeout=args.timeout)
        except Exception as err:  # report and go on with the next notebook
            failed += 1
            print(f"FAILED: {type(err).__name__}: {str(err)[-2000:]}")
            continue
        out = Path(args.out_dir) / path.name if args.out_dir else path
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        size_kb = out.stat().st_size / 1024
        print(f"{seconds:.0f} s, peak {peak:.0f} MB, {size_kb:.0f} KB -> {out}")
        runtimes[path.stem] = {"seconds": round(seconds, 1), "peak_mb": round(peak or float("nan"), 1), "cores": args.cores or None,
                               "parameters": params, "date": date.today().isoformat()}
        runtimes_path.parent.mkdir(parents=True, exist_ok=True)
        runtimes_path.write_text(json.dumps(dict(sorted(runtimes.items())), indent=2) + "\n")
    print(f"runtimes -> {runtimes_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
