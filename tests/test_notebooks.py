"""Execute every course notebook top to bottom with tiny parameters (FAST=True).

Each notebook runs in a fresh kernel through nbclient, with the parameters injected after its
``parameters`` cell (papermill style, see tools/run_notebooks.py), on

* PneumoniaMNIST from the shared read-only folder (skipped when it is absent),
* the bundled ``digits`` (always available),
* a small synthetic RGB dataset in MedMNIST layout (3 channels, 4 classes), so the RGB code paths run.

Kernels get one thread per numerical library (see ``one_thread_kernels``). The whole file takes about
2 minutes on 2 CPU cores.

The tests check that no cell fails, that figures were drawn, and that the clustering and baseline
notebooks print their metrics tables. FAST runs save nothing into the repository.
"""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
CELL_TIMEOUT = 90  # seconds per cell (FAST cells take a few); past it the notebook is retried once in a fresh kernel

_spec = importlib.util.spec_from_file_location("run_notebooks", ROOT / "tools" / "run_notebooks.py")
runner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(runner)

#: Notebook-specific overrides that switch on optional code paths in the FAST runs.
EXTRA = {"02_training": {"TRAIN_PLAIN_AE": True}, "05_baselines": {"RUN_RESNET": True}}
#: Text that must appear in a notebook's outputs.
MUST_SHOW = {"04_clustering": ["Hungarian", "majority-vote"], "05_baselines": ["Hungarian", "Same-backbone"]}


@pytest.fixture(autouse=True)
def one_thread_kernels(monkeypatch):
    """Kernels inherit one thread per numerical library: FAST runs gain nothing from threads, and on a
    shared or small CI machine spinning OpenMP threads can make a 5-second notebook take minutes."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.setenv(var, "1")


def _outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for mime in ("text/plain", "text/markdown", "text/html"):
                value = out.get("data", {}).get(mime, "")
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def run_and_check(path: Path, parameters: dict, skip_resnet: bool = False) -> nbformat.NotebookNode:
    params = {"FAST": True, **parameters, **EXTRA.get(path.stem, {})}
    if skip_resnet:
        params.pop("RUN_RESNET", None)
    nb, seconds, _ = runner.execute_notebook(path, params, timeout=CELL_TIMEOUT, measure_memory=False)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    n_figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert n_figures >= 1, f"{path.name} drew no figure"
    text = _outputs_text(nb)
    for needle in MUST_SHOW.get(path.stem, []):
        assert needle in text, f"{path.name}: {needle!r} not found in the outputs"
    assert "widgets" not in nb.metadata, "widget state must not be stored"
    print(f"{path.name} {parameters.get('DATASET')}: {seconds:.1f} s, {n_figures} figures")
    return nb


def test_there_are_six_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    """First code cell tagged `parameters` with the shared names; the next one applies FAST; no stored widget state."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("DATASET", "DATA_DIR", "SEED", "FAST"):
        assert f"\n{name} = " in "\n" + code[0].source, f"{name} missing from the parameters cell"
    assert "pneumoniamnist" in code[0].source and "FAST = False" in code[0].source
    assert "if FAST" in code[1].source
    assert nb.cells[0].cell_type == "markdown" and "Runtime" in nb.cells[0].source
    assert "widgets" not in nb.metadata
    assert path.stat().st_size < 2_000_000, "keep the saved outputs small"
    for cell in code:  # the library holds the logic: no models or losses defined in cells
        assert not re.search(r"^\s*class \w+|nn\.Module|def forward", cell.source, re.M), cell.source[:200]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_pneumoniamnist(path, shared_data_dir):
    run_and_check(path, {"DATASET": "pneumoniamnist", "DATA_DIR": str(shared_data_dir)})


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_digits(path):
    run_and_check(path, {"DATASET": "digits"}, skip_resnet=True)


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_rgb_npz(path, tiny_rgb_npz):
    data = tiny_rgb_npz(n=(160, 40, 60), channels=3, n_classes=4, seed=1)
    run_and_check(path, {"DATASET": str(data)}, skip_resnet=True)


def test_inject_parameters_replaces_previous_injection():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("x"), nbformat.v4.new_code_cell("A = 1")])
    nb.cells[1].metadata["tags"] = ["parameters"]
    nb.cells.append(nbformat.v4.new_code_cell("print(A)"))
    runner.inject_parameters(nb, {"A": 2, "B": "x"})
    runner.inject_parameters(nb, {"A": 3})
    assert [c.source for c in nb.cells][1:3] == ["A = 1", "# Parameters injected by tools/run_notebooks.py\nA = 3"]
    assert len(nb.cells) == 4


def test_strip_widgets_keeps_explorer_text_only():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    view = {"model_id": "abc", "version_major": 2, "version_minor": 0}
    nb.cells[0].outputs = [
        nbformat.v4.new_output("display_data", {runner.WIDGET_VIEW: view, "text/plain": "Interactive explorer: run it"}),
        nbformat.v4.new_output("display_data", {runner.WIDGET_VIEW: view, "text/plain": "training:   0%|"}),
        nbformat.v4.new_output("stream", text="hello"),
    ]
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    runner.strip_widgets(nb)
    assert "widgets" not in nb.metadata
    outs = nb.cells[0].outputs
    assert len(outs) == 2 and outs[0]["data"] == {"text/plain": "Interactive explorer: run it"} and outs[1]["text"] == "hello"
    json.dumps(nb)  # still serialisable
