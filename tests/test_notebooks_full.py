"""Every notebook in full mode (``FAST = False``) under plain papermill, on a new RGB 5-class set, in time.

A teacher who runs the course on their own data with papermill, CI or any other nbclient-based
runner must not wait forever. The explorer cells once did: nbclient mimics the Output widget, and
when a cell displayed into one (``with output: display(fig)``) nbclient sent the captured output
back to the kernel on the shell socket while it waited there for the cell's reply; the send could
swallow the wake-up for a reply that had just arrived, and the run waited with the kernel idle
(jupyter/nbclient#312; fixed in :meth:`cae_lib.widgets.Explorer.refresh`, which sets the Output
widget's ``outputs`` instead).

Here each notebook runs

* in full mode: ``FAST`` keeps its default ``False``, so every FAST shortcut is off (full splits,
  full k ranges, full-size figures). Only the training budget is cut (``EPOCHS`` and, in notebook
  5, ``SB_EPOCHS``): the default of 160 steps of 256 images takes about a minute per model on one
  core whatever the size of the set, and training has nothing to do with what this file checks;
* on a synthetic RGB set of 5 classes in MedMNIST layout, made here, for which no checkpoint is
  shipped (notebook 2 trains the CAE and saves it; the later notebooks load it);
* in a copy under a temporary folder, so its ``runs/`` (``cae_lib.course.runs_dir``: next to the
  ``notebooks`` folder it runs in) lands there and nothing is written into the repository;
* with a hard time limit and no retry (``tools/run_notebooks.py``'s ``execute`` with
  ``retries=0``): a cell that outlives the limit fails the test, and so does a notebook that takes
  longer in total. nbclient, when a wake-up was swallowed, finds the waiting reply only when its
  cell timeout fires, so the hang shows as a notebook as long as the limit;
* behind a busy runner: nbclient's Output-widget mimic is slowed down before it writes anything
  back to the kernel, as on a loaded machine. That makes the race above certain rather than
  occasional, so this file fails on every run if an explorer captures its output again.

Measured on 2 shared CPU cores, one thread per kernel: about 2.5 minutes for the file; timings are noisy.
"""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import nbformat
import pytest
from nbclient.exceptions import CellTimeoutError
from nbclient.output_widget import OutputWidget
from papermill.exceptions import PapermillExecutionError

from conftest import write_medmnist_npz
from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.py"))
runner = load_script("tools/run_notebooks.py")

NAME = "nbfull_rgb5"  #: the data set's name, so its runs folders are easy to find (and to miss in the repository)
SPLITS = (256, 50, 100)  #: train / val / test images: 256 is one full batch of the default batch size
EPOCHS = 10  #: training budget of every model (one step per epoch with 256 images)
NOTEBOOK_LIMIT = 180  #: seconds for one notebook, and for any one of its cells; the slowest takes about 70
RUNNER_DELAY = 0.5  #: seconds the busy runner waits before it writes to the kernel


@dataclass
class Workspace:
    """A throw-away copy of the course layout: ``root/notebooks`` (where notebooks run) and ``root/runs``."""

    root: Path
    data: Path


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    """One folder for the whole module, so the later notebooks load the CAE that notebook 2 saves."""
    root = tmp_path_factory.mktemp("course")
    (root / "notebooks").mkdir()
    data = write_medmnist_npz(root / f"{NAME}.npz", n=SPLITS, channels=3, n_classes=5, seed=3)
    yield Workspace(root, data)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def one_thread_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kernels inherit one thread per numerical library (2 shared cores: threads only contend)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")


@pytest.fixture(autouse=True)
def busy_runner(monkeypatch: pytest.MonkeyPatch) -> None:
    """Slow down nbclient (it runs in this process) right before its Output-widget mimic writes to the kernel.

    When a cell displays into an Output widget, nbclient sends the captured output back to the
    kernel on the shell socket. Here it first waits ``RUNNER_DELAY`` seconds, as on a loaded machine;
    meanwhile the kernel finishes the cell and its reply arrives, and the send swallows the wake-up
    for that reply, every time. A notebook whose widgets capture nothing (cae-lib's explorers set
    their Output widget's ``outputs`` instead) never gets here.
    """
    original = OutputWidget.send

    def slow_send(self: OutputWidget, *args: Any, **kwargs: Any) -> None:
        time.sleep(RUNNER_DELAY)
        original(self, *args, **kwargs)

    monkeypatch.setattr(OutputWidget, "send", slow_send)


def parameters_for(path: Path, wanted: dict[str, Any]) -> dict[str, Any]:
    """The entries of ``wanted`` that the notebook's ``parameters`` cell defines (papermill warns about others)."""
    cell = next(c for c in runner.read_notebook(path).cells if "parameters" in c.metadata.get("tags", []))
    defined = set(re.findall(r"^(\w+) = ", cell.source, re.M))
    assert "FAST" in defined and "FAST = False" in cell.source, f"{path.name}: full mode is the default"
    return {name: value for name, value in wanted.items() if name in defined}


def explorer_figures(nb: nbformat.NotebookNode) -> list[bool]:
    """For each explorer in the executed (tidied) notebook: is a figure shown under its text?"""
    found = []
    for cell in nb.cells:
        outputs = cell.get("outputs", [])
        for i, out in enumerate(outputs):
            if str(out.get("data", {}).get("text/plain", "")).startswith(runner.EXPLORER_PREFIX):
                found.append(any("image/png" in o.get("data", {}) for o in outputs[i + 1:]))
    return found


def shown_text(nb: nbformat.NotebookNode) -> str:
    """Every printed line and every text/plain of the notebook's outputs."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


@pytest.mark.slow
@pytest.mark.parametrize("source", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_in_full_mode_within_its_time_limit(source: Path, workspace: Workspace) -> None:
    path = workspace.root / "notebooks" / source.name
    shutil.copy(source, path)
    params = parameters_for(path, {"DATASET": str(workspace.data), "EPOCHS": EPOCHS, "SB_EPOCHS": EPOCHS})
    try:
        nb, seconds, _ = runner.execute(path, params, timeout=NOTEBOOK_LIMIT, retries=0)
    except CellTimeoutError as err:
        pytest.fail(f"{source.stem}: a cell ran past {NOTEBOOK_LIMIT} s (it hangs): {str(err).splitlines()[0]}")
    except PapermillExecutionError as err:
        pytest.fail(f"{source.stem} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n{''.join(err.traceback)[-3000:]}")
    print(f"{source.stem}: {seconds:.1f} s in full mode")
    assert seconds < NOTEBOOK_LIMIT, (
        f"{source.stem} took {seconds:.0f} s, over its limit of {NOTEBOOK_LIMIT} s: a cell waited for a reply the "
        "kernel had already sent (an explorer capturing its output with `with output:`?)")
    n_explorers = len(re.findall(r"^widgets\.\w+_explorer\(", source.read_text(), re.M))
    assert explorer_figures(nb) == [True] * n_explorers, f"{source.stem}: an explorer shows no figure under its text"
    if source.stem.startswith("02"):
        assert "shipped checkpoint for these settings: none" in shown_text(nb), "the set must have no shipped checkpoint"
        assert (workspace.root / "runs" / "notebooks" / f"{NAME}_cae" / "model.pt").is_file(), "the CAE is saved next to the copy"
    assert not list((ROOT / "runs").glob(f"*/{NAME}*")), "a run was written into the repository"
