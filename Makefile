# cae-lib: every target creates and fills the virtual environment itself when it is missing.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# Where the MedMNIST .npz files live. Defaults to the shared folder next to the repo when it exists,
# otherwise the toolkit's own cache (~/.cache/cae_lib/medmnist, where it downloads to).
CAE_DATA_DIR ?= $(if $(wildcard ../shared/data/medmnist/*.npz),$(abspath ../shared/data/medmnist),)
export CAE_DATA_DIR

.PHONY: venv demo test lab benchmark clean

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

clean:
	rm -rf $(VENV) report .pytest_cache
