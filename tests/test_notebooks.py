"""The course notebooks: their sources, their committed outputs, and a FAST run of each.

Every notebook is a pair: ``notebooks/NN_name.py`` (jupytext percent format, the source to edit)
and ``notebooks/NN_name.ipynb`` (the same cells, with the outputs of a full default run). Here

* the two files of each pair must have the same cells (type, source, tags);
* the structure follows the course conventions (runtime stated, ``parameters`` cell, FAST cell);
* the committed outputs are fit for a reader with no kernel: no widget state, no error, and a
  figure under every explorer;
* each ``.py`` runs top to bottom through papermill (``tools/run_notebooks.py``) with ``FAST=True`` on
  PneumoniaMNIST from the shared read-only folder (skipped when absent), on the bundled ``digits``,
  and on a small synthetic RGB set in MedMNIST layout (3 channels, 4 classes).

Kernels get one thread per numerical library. The whole file takes about 3-4 minutes on 2 CPU cores.
FAST runs save nothing into the repository.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
from papermill.exceptions import PapermillExecutionError

from scripts import load_script

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("0*.ipynb"))
CELL_TIMEOUT = 90  # seconds per cell (FAST cells take a few); past it the test fails (no retry: it would hide a hang)

runner = load_script("tools/run_notebooks.py")

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


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, list[str]]]:
    return [(c.cell_type, c.source, sorted(c.metadata.get("tags", []))) for c in nb.cells]


def _outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", ""))
            for mime in ("text/plain", "text/markdown", "text/html"):
                value = out.get("data", {}).get(mime, "")
                parts.append("".join(value) if isinstance(value, list) else value)
    return "\n".join(parts)


def test_there_are_six_paired_notebooks():
    assert [p.stem[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05", "06"]
    assert sorted(p.stem for p in (ROOT / "notebooks").glob("0*.py")) == [p.stem for p in NOTEBOOKS]
    assert not (ROOT / "tools" / "make_notebooks.py").exists(), "the notebooks are their own sources: no generator"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_py_and_ipynb_have_the_same_cells(path):
    source, committed = _cells(jupytext.read(path.with_suffix(".py"))), _cells(nbformat.read(path, as_version=4))
    fix = f"run `jupytext --sync notebooks/{path.name}` (the file edited last wins), then `make notebooks NB={path.stem[:2]}`"
    assert len(source) == len(committed), f"{path.stem}: {len(source)} cells in the .py, {len(committed)} in the .ipynb; {fix}"
    for i, (a, b) in enumerate(zip(source, committed)):
        assert a == b, f"{path.stem}: cell {i} differs between the .py and the .ipynb; {fix}\n.py:   {a!r:.300}\n.ipynb: {b!r:.300}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    """First code cell tagged `parameters` with the shared names; the next one applies FAST."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert "parameters" in code[0].metadata.get("tags", [])
    for name in ("DATASET", "DATA_DIR", "SEED", "FAST"):
        assert f"\n{name} = " in "\n" + code[0].source, f"{name} missing from the parameters cell"
    assert "pneumoniamnist" in code[0].source and "FAST = False" in code[0].source
    assert "if FAST" in code[1].source
    assert nb.cells[0].cell_type == "markdown" and "Runtime" in nb.cells[0].source
    assert path.stat().st_size < 2_000_000, "keep the saved outputs small"
    for cell in code:  # the library holds the logic: no models defined in cells
        assert not re.search(r"^\s*class \w+|nn\.Module|def forward", cell.source, re.M), cell.source[:200]
    # One exception, for teaching: notebook 02 writes NT-Xent out in plain torch, once, and the same
    # cell checks it against the library's NTXentLoss. Any other loss written in a cell must do the same.
    for cell in code:
        if re.search(r"^def \w*(loss|xent)\w*\(", cell.source, re.M | re.I):
            assert "NTXentLoss" in cell.source and "assert torch.allclose(" in cell.source, cell.source[:200]
    if path.stem == "02_training":
        assert any(re.search(r"^def nt_xent\(", c.source, re.M) for c in code), "notebook 02 shows NT-Xent in plain torch"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_outputs_read_well_without_a_kernel(path):
    """What GitHub shows: every code cell ran, no error, no widget state, and a figure under every explorer."""
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata
    assert not any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells), "commit runs with default parameters"
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        assert cell.execution_count is not None, f"{path.stem}: code cell {i} was not executed; run `make notebooks NB={path.stem[:2]}`"
        outputs = cell.outputs
        assert not [o for o in outputs if o.output_type == "error"], f"{path.stem}: code cell {i} failed"
        assert not [o for o in outputs if runner.WIDGET_VIEW in o.get("data", {})], f"{path.stem}: code cell {i} keeps a widget view"
        for j, out in enumerate(outputs):
            if str(out.get("data", {}).get("text/plain", "")).startswith(runner.EXPLORER_PREFIX):
                assert any("image/png" in o.get("data", {}) for o in outputs[j + 1:]), f"{path.stem}: explorer in code cell {i} has no figure"


def run_and_check(path: Path, parameters: dict, skip_resnet: bool = False) -> nbformat.NotebookNode:
    params = {"FAST": True, **parameters, **EXTRA.get(path.stem, {})}
    if skip_resnet:
        params.pop("RUN_RESNET", None)
    try:
        nb, seconds, peak_mb = runner.execute(path.with_suffix(".py"), params, timeout=CELL_TIMEOUT, measure_memory=True)
    except PapermillExecutionError as err:
        pytest.fail(f"{path.stem} failed in cell {err.exec_count}: {err.ename}: {err.evalue}\n{''.join(err.traceback)[-3000:]}")
    n_figures = sum("image/png" in o.get("data", {}) for c in nb.cells for o in c.get("outputs", []))
    assert n_figures >= 1, f"{path.name} drew no figure"
    text = _outputs_text(nb)
    for needle in MUST_SHOW.get(path.stem, []):
        assert needle in text, f"{path.name}: {needle!r} not found in the outputs"
    assert "widgets" not in nb.metadata, "widget state must not be stored"
    assert peak_mb is None or peak_mb > 100, "the kernel imports torch: its peak memory cannot be this small"
    assert not [c for c in nb.cells if runner.PEAK_TAG in c.metadata.get("tags", [])], "the memory cell is not saved"
    print(f"{path.name} {parameters.get('DATASET')}: {seconds:.1f} s, peak {peak_mb or float('nan'):.0f} MB, {n_figures} figures")
    return nb


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


def test_tidy_keeps_each_explorers_figure_and_drops_widget_state():
    """A saved widget view without its state shows "Error displaying widget": views go, an explorer
    keeps its text and its Output widget's figure, a progress bar goes; papermill's metadata goes."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x")])
    png = {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}
    explorer = {runner.WIDGET_VIEW: {"model_id": "box", "version_major": 2, "version_minor": 0}, "text/plain": "Interactive explorer: run it"}
    progress = {runner.WIDGET_VIEW: {"model_id": "bar", "version_major": 2, "version_minor": 0}, "text/plain": "training:   0%|"}
    nb.cells[0].outputs = [nbformat.v4.new_output("display_data", explorer), nbformat.v4.new_output("display_data", progress),
                           nbformat.v4.new_output("stream", text="hello")]
    nb.cells[0].metadata.update({"papermill": {"duration": 1.0}, "tags": []})
    nb.metadata["papermill"] = {"parameters": {}}
    nb.metadata["widgets"] = {runner.WIDGET_STATE: {"state": {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_controls", "IPY_MODEL_out"]}},
        "controls": {"model_name": "HBoxModel", "state": {"children": []}},
        "out": {"model_name": "OutputModel", "state": {"outputs": [{"output_type": "display_data", "data": png, "metadata": {}}]}},
        "bar": {"model_name": "HBoxModel", "state": {"children": []}},
    }}}
    runner.tidy(nb)
    nbformat.validate(nb)
    assert "widgets" not in nb.metadata and "papermill" not in nb.metadata and nb.cells[0].metadata == {}
    outs = nb.cells[0].outputs
    assert [o.get("data", {}).get("text/plain", o.get("text")) for o in outs] == ["Interactive explorer: run it", "<Figure>", "hello"]
    assert outs[1]["data"]["image/png"] == png["image/png"]


def test_read_notebook_from_its_py_source():
    nb = runner.read_notebook(ROOT / "notebooks" / "01_data.py")
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert "parameters" in [c for c in nb.cells if c.cell_type == "code"][0].metadata["tags"]


#: Where a number quoted in a notebook's text may come from: the committed results, the model cards,
#: the measured runtimes, the published references (cae_lib/comparison.py) and the notebook's own outputs.
COMMITTED = ("benchmarks/results/*.md", "benchmarks/results/*.json", "benchmarks/results/*.jsonl", "benchmarks/README.md",
             "cae_lib/pretrained/*.md", "cae_lib/pretrained/*.json", "notebooks/runtimes.json", "cae_lib/comparison.py")
QUOTED_NUMBER = re.compile(r"(?<![\w.])(?<!arXiv )(\d+\.\d{2,})(?![\w.]*\d)")


def test_numbers_in_the_prose_come_from_committed_results():
    """Every number with two or more decimals in a text cell is in a committed results file or the notebook's
    outputs: exactly (three or more decimals, as printed from a stored value) or rounded (two decimals, "about 0.85")."""
    corpus = "\n".join(p.read_text() for pattern in COMMITTED for p in sorted(ROOT.glob(pattern)))
    values = [float(x) for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", corpus)]
    assert len(values) > 1000, "the committed results were not found"
    typed = []
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        outputs = _outputs_text(nb) + "\n".join(str(o.get("text", "")) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
        for cell in (c for c in nb.cells if c.cell_type == "markdown"):
            for number in QUOTED_NUMBER.findall(cell.source):
                decimals = len(number.split(".")[1])
                if number in corpus or number in outputs:
                    continue
                if any(f"{v:.{decimals}f}" == number for v in values):
                    continue
                typed.append(f"{path.stem}: {number}")
    assert not typed, f"numbers typed by hand, in no committed result: {typed}"


def test_the_number_check_catches_a_number_typed_by_hand():
    assert QUOTED_NUMBER.findall("spectral scored 0.8213 on average (arXiv 2209.12005), about 0.85, 62.5 %") == ["0.8213", "0.85"]


def test_the_runtimes_in_the_readmes_are_the_measured_ones():
    """The runtime columns of README.md and notebooks/README.md come from notebooks/runtimes.json (make notebooks)."""
    measured = json.loads((ROOT / "notebooks" / "runtimes.json").read_text())
    for readme in (ROOT / "README.md", ROOT / "notebooks" / "README.md"):
        rows = re.findall(r"^\| \[(0\d_\w+)\]\(.*? \| (\d+) s \|", readme.read_text(), re.M)
        assert [name for name, _ in rows] == [p.stem for p in NOTEBOOKS], readme
        for name, seconds in rows:
            assert int(seconds) == round(measured[name]["seconds"]), f"{readme.name}: {name} {seconds} s, measured {measured[name]['seconds']}"
