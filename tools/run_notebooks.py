"""Execute the course notebooks with papermill, one at a time on one CPU core; record runtime and peak memory.

    python tools/run_notebooks.py                      # every notebook, default parameters, outputs saved in place
    python tools/run_notebooks.py 04                   # only notebooks/04_*.ipynb (or give paths)
    python tools/run_notebooks.py --param FAST=True --param DATASET=digits --out-dir /tmp/nb

This is a thin layer over papermill (``make notebooks`` calls it). For each notebook it

1. pairs the files with jupytext (``jupytext --sync``): the ``.ipynb`` gets the cells of
   ``NN_name.py``, or the ``.py`` those of the ``.ipynb`` when that was edited last (in place only);
2. runs papermill in a fresh kernel, with ``--param`` values injected after the cell tagged
   ``parameters``; the kernel is pinned to ``--cores`` CPU cores (affinity and ``OMP_NUM_THREADS``
   etc., which it inherits); a last cell, removed afterwards, prints the kernel's peak memory;
3. tidies the result (:func:`tidy`): papermill's metadata and the widget state go, since a saved
   widget without its kernel shows "Error displaying widget"; each explorer keeps its first figure
   below its text, so a reader with no kernel (GitHub) sees what the controls change;
4. writes the notebook (in place by default; not if its ``.py`` was edited while it ran, since the
   next sync would then copy the old cells over the edit) and, for in-place runs with default
   parameters, ``notebooks/runtimes.json``: ``{notebook: {"seconds", "peak_mb", "cores", "parameters", "date"}}``.

``tests/test_notebooks.py`` runs every notebook through :func:`execute` with ``FAST=True``.
For the committed outputs, point the notebooks at the data with ``CAE_DATA_DIR`` rather than a
parameter (injected cells are saved with the notebook and would break the pairing).
"""

from __future__ import annotations

import argparse
import ast
import copy
import json
import os
import re
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any, Mapping

import jupytext
import jupytext.cli
import nbformat
import papermill
from nbclient.exceptions import CellTimeoutError, DeadKernelError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
RUNTIMES = NOTEBOOK_DIR / "runtimes.json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
EXPLORER_PREFIX = "Interactive explorer"  # the text/plain of every cae_lib.widgets.Explorer (EXPLORER_TEXT)
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
PEAK_TAG = "peak-memory"
PEAK_CODE = """\
try:  # the kernel's peak resident memory (ru_maxrss: KiB on Linux, bytes on macOS; no resource module on Windows)
    import resource as _r, sys as _s
    print("PEAK_MB", _r.getrusage(_r.RUSAGE_SELF).ru_maxrss / (1024 ** 2 if _s.platform == "darwin" else 1024))
except ImportError:
    pass"""


def read_notebook(path: str | Path) -> nbformat.NotebookNode:
    """A notebook from its ``.ipynb`` or from its jupytext ``.py`` source (cells only, no outputs)."""
    path = Path(path)
    if path.suffix == ".py":
        nb = jupytext.read(path)
        nb.metadata = {"kernelspec": KERNELSPEC, "language_info": {"name": "python"}}  # as in every .ipynb here
        return nb
    return nbformat.read(path, as_version=4)


def execute(
    path: str | Path,
    parameters: Mapping[str, Any] | None = None,
    timeout: int = 600,
    retries: int = 0,
    measure_memory: bool = False,
) -> tuple[nbformat.NotebookNode, float, float | None]:
    """Run a notebook (``.ipynb`` or ``.py``) top to bottom with papermill in its own folder.

    Returns ``(executed and tidied notebook, seconds of the last attempt, the kernel's peak memory
    in MB or None)``. Raises ``papermill.PapermillExecutionError`` on the first failing cell, and
    ``CellTimeoutError`` (or ``DeadKernelError``) when a cell runs longer than ``timeout`` seconds
    (or the kernel dies) in each of ``1 + retries`` attempts, each in a fresh kernel.

    No retry by default: a retry turns a hang into a slow success and hides it (the tests call this
    with the default). ``retries`` is for a machine known to be flaky, and each retry is printed.
    """
    path = Path(path).resolve()
    source = read_notebook(path)
    if measure_memory:
        source.cells.append(nbformat.v4.new_code_cell(PEAK_CODE, metadata={"tags": [PEAK_TAG]}))
    for attempt in range(retries + 1):
        start = time.perf_counter()
        try:
            nb = papermill.execute_notebook(
                copy.deepcopy(source), None, parameters=dict(parameters or {}), kernel_name="python3",
                cwd=str(path.parent), execution_timeout=timeout, progress_bar=False, record_timing=False,
            )
            break
        except (CellTimeoutError, DeadKernelError) as exc:
            # The explorers' cells used to wait here for a reply the kernel had already sent
            # (jupyter/nbclient#312); that is fixed at its cause, in cae_lib.widgets.Explorer.refresh.
            if attempt == retries:
                raise
            print(f"note: {path.name}: {type(exc).__name__} ({str(exc).splitlines()[0][:120]}); retrying in a fresh kernel", flush=True)
    seconds = time.perf_counter() - start
    peak = None
    for cell in [c for c in nb.cells if PEAK_TAG in c.metadata.get("tags", [])]:
        found = re.search(r"PEAK_MB ([0-9.]+)", "".join(o.get("text", "") for o in cell.outputs))
        peak = float(found.group(1)) if found else None
        nb.cells.remove(cell)
    return tidy(nb), seconds, peak


def _widget_outputs(model_id: str, state: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The outputs held by the Output widgets inside widget ``model_id`` (children first to last)."""
    model = state.get(model_id, {})
    if model.get("model_name") == "OutputModel":
        return [o for o in model.get("state", {}).get("outputs", []) if WIDGET_VIEW not in o.get("data", {})]
    children = model.get("state", {}).get("children", [])
    return [o for child in children for o in _widget_outputs(str(child).removeprefix("IPY_MODEL_"), state)]


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make an executed notebook fit to commit.

    * papermill's and nbclient's bookkeeping (``metadata.papermill``, cell timings, empty tags) goes;
    * every widget view goes with the widget state (without a kernel it would only say "Error
      displaying widget"): an explorer keeps its text (``cae_lib.widgets.EXPLORER_TEXT``) followed by
      what its output area showed, i.e. its first figure; other widgets (progress bars) are dropped.
    """
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    nb.metadata.pop("papermill", None)
    for cell in nb.cells:
        for key in ("papermill", "execution"):
            cell.metadata.pop(key, None)
        if not cell.metadata.get("tags", True):
            del cell.metadata["tags"]
        if cell.cell_type != "code":
            continue
        kept = []
        for out in cell.outputs:
            data = out.get("data", {})
            if WIDGET_VIEW not in data:
                kept.append(out)
            elif str(data.get("text/plain", "")).startswith(EXPLORER_PREFIX):
                kept.append(nbformat.v4.new_output("display_data", {"text/plain": data["text/plain"]}))
                kept += [nbformat.from_dict(o) for o in _widget_outputs(data[WIDGET_VIEW]["model_id"], state)]
        cell.outputs = kept
    return nb


def pin_to_cores(n: int) -> list[int]:
    """Restrict this process (and so the kernels it starts) to ``n`` CPU cores and ``n`` threads per library."""
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


def _select(names: list[str]) -> list[Path]:
    every = sorted(NOTEBOOK_DIR.glob("0*.ipynb"))
    if not names:
        return every
    paths = []
    for name in names:
        matches = [Path(name).with_suffix(".ipynb")] if Path(name).suffix else [p for p in every if p.name.startswith(name)]
        if not matches or not matches[0].exists():
            raise SystemExit(f"no notebook {name!r}; choose from {[p.stem for p in every]} or give a path")
        paths += matches
    return paths


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebooks", nargs="*", help="notebook paths or name prefixes such as 04 (default: all of notebooks/0*.ipynb)")
    p.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="parameter override (a Python literal)")
    p.add_argument("--cores", type=int, default=1, help="CPU cores for the kernel (default 1; 0: no pinning)")
    p.add_argument("--timeout", type=int, default=300, help="seconds one cell may run before the notebook fails (default 300)")
    p.add_argument("--retries", type=int, default=0, help="times a timed-out notebook is run again in a fresh kernel (default 0: a hang fails)")
    p.add_argument("--out-dir", default=None, help="write executed notebooks here instead of in place")
    p.add_argument("--runtimes", default=None, help=f"JSON file to update (default: {RUNTIMES.relative_to(ROOT)} for in-place runs with default parameters)")
    args = p.parse_args(argv)

    params = {name.strip(): _literal(value.strip()) for name, _, value in (item.partition("=") for item in args.param)}
    in_place = args.out_dir is None
    runtimes_path = Path(args.runtimes) if args.runtimes else (RUNTIMES if in_place and not params else None)
    runtimes = json.loads(runtimes_path.read_text()) if runtimes_path and runtimes_path.exists() else {}
    cores = pin_to_cores(args.cores) if args.cores > 0 else []
    paths = _select(args.notebooks)
    print(f"running {len(paths)} notebook(s) on cores {cores or 'all'}" + (f" with {params}" if params else ""), flush=True)
    failed = 0
    for path in paths:
        source = path.with_suffix(".py")
        if in_place:
            jupytext.cli.jupytext(["--sync", "--quiet", str(path)])
        before = source.read_text() if source.exists() else None
        print(f"{path.name} ...", end=" ", flush=True)
        try:
            nb, seconds, peak = execute(path, params, timeout=args.timeout, retries=args.retries, measure_memory=True)
        except Exception as err:  # report and go on with the next notebook
            failed += 1
            print(f"FAILED: {type(err).__name__}: {str(err)[-2000:]}")
            continue
        if in_place and source.exists() and source.read_text() != before:
            # Saving now would make the .ipynb, with the old cells, the newer file of the pair, and
            # the next `jupytext --sync` would copy those old cells over the edit.
            failed += 1
            print(f"NOT SAVED: {source.name} was edited while it ran; run it again")
            continue
        out = path if in_place else Path(args.out_dir) / path.name
        out.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, out)
        print(f"{seconds:.0f} s, peak {peak or float('nan'):.0f} MB, {out.stat().st_size / 1024:.0f} KB -> {out}", flush=True)
        if runtimes_path:
            runtimes[path.stem] = {"seconds": round(seconds, 1), "peak_mb": round(peak, 1) if peak else None,
                                   "cores": args.cores or None, "parameters": params, "date": date.today().isoformat()}
            runtimes_path.write_text(json.dumps(dict(sorted(runtimes.items())), indent=2) + "\n")
    if runtimes_path:
        print(f"runtimes -> {runtimes_path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
