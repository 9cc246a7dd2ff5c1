# cae-lib: every target creates and fills the virtual environment itself when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Where the MedMNIST .npz files live. Defaults to the shared folder next to the repo when it exists,
# otherwise the toolkit's own cache (~/.cache/cae_lib/medmnist, where it downloads to).
CAE_DATA_DIR ?= $(if $(wildcard ../shared/data/medmnist/*.npz),$(abspath ../shared/data/medmnist),)
export CAE_DATA_DIR

.PHONY: venv demo test lab notebooks check-notebooks clean

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -e ".[dev]"
	touch $@

## The main job: load or train the CAE, cluster, evaluate against the baselines, write a report folder.
demo: venv
	$(PY) -m cae_lib demo --out report

## The test suite (unit tests, CLI, notebooks with tiny parameters).
test: venv
	$(PY) -m pytest -q

## JupyterLab on the notebooks.
lab: venv
	$(VENV)/bin/jupyter lab notebooks/

## Re-execute the notebooks with papermill, one at a time on one core, outputs saved in place, and
## update notebooks/runtimes.json. All six (a few minutes), or one: make notebooks NB=04
notebooks: venv
	OMP_NUM_THREADS=1 $(PY) tools/run_notebooks.py $(NB)

## Check the notebooks: .py and .ipynb in sync, committed outputs, FAST runs, the real-browser test.
## All of them, or one: make check-notebooks NB=04
check-notebooks: venv
	$(PY) -m pytest -q tests/test_notebooks.py tests/test_browser.py $(if $(NB),-k "$(NB) or six_paired",)

clean:
	rm -rf $(VENV) report .pytest_cache
