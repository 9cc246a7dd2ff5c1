"""Every public name that the course, the README and users' code import keeps importing.

``PUBLIC_NAMES`` lists the names the notebooks imported at commit aac44ce (before the library was
reshaped into packages), at their homes now, plus the data entry points the README names. The second test reads the
notebooks as they are now, so a notebook edit that imports a name the library lacks fails here,
in seconds, instead of half-way through a notebook run.
"""

from __future__ import annotations

import ast
import importlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PUBLIC_NAMES: dict[str, tuple[str, ...]] = {
    'cae_lib': ('plots', 'widgets'),
    'cae_lib.baselines': ('SupervisedConfig', 'run_baseline'),
    'cae_lib.checkpoint': ('load_checkpoint',),
    'cae_lib.cluster': ('METHODS', 'choose_k_curves', 'cluster_latents', 'majority_vote_curve', 'subgroup_report'),
    'cae_lib.comparison': ('BENCHMARK_DIR', 'REFERENCES', 'pixel_baselines', 'results_table'),
    'cae_lib.config': ('AugmentConfig', 'preset'),
    'cae_lib.data': ('ImageData', 'class_balance', 'format_dataset_table', 'list_datasets', 'load_dataset', 'resolve_data_dir', 'save_npz', 'summarize'),
    'cae_lib.data.registry': ('is_registered',),
    'cae_lib.embed': ('embed', 'reconstruct'),
    'cae_lib.evaluate': ('EvalConfig', 'evaluate_model', 'format_metrics', 'load_splits'),
    'cae_lib.experiment': ('build_trainer', 'config_for_data', 'find_pretrained', 'load_or_train', 'pretrained_path'),
    'cae_lib.losses': ('CAEObjective',),
    'cae_lib.metrics': ('hungarian_accuracy', 'majority_class_floor'),
    'cae_lib.models': ('ContrastiveAutoencoder', 'count_parameters'),
    'cae_lib.plots': ('class_balance', 'class_montage', 'confusion_matrix_plot', 'elbow_silhouette', 'image_grid', 'label_efficiency', 'majority_vote_pitfall', 'reconstructions', 'results_bar_chart', 'subgroup_montages', 'training_curves'),
    'cae_lib.probes': ('knn_accuracy', 'label_subset', 'linear_probe'),
    'cae_lib.sampling': ('ClassGMMSampler', 'GaussianSampler', 'LatentTraversal', 'PriorSampler', 'diversity', 'label_agreement', 'memorisation_check'),
    'cae_lib.widgets': ('augmentation_explorer', 'class_sampling_explorer', 'cluster_explorer', 'clustering_table', 'interpolation_explorer', 'latent_map_explorer', 'render_class_samples', 'render_clustering', 'render_interpolation', 'render_latent_map', 'render_samplers', 'render_traversal', 'render_views', 'traversal_explorer'),
}


def _provides(module: str, name: str) -> bool:
    """True when ``from module import name`` works (an attribute or a submodule)."""
    if hasattr(importlib.import_module(module), name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("module", sorted(PUBLIC_NAMES))
def test_frozen_public_names_still_import(module: str) -> None:
    missing = [name for name in PUBLIC_NAMES[module] if not _provides(module, name)]
    assert not missing, f"{module} no longer provides {missing}"


def _code_cells() -> list[tuple[str, str]]:
    """(where, source) of every notebook code cell (.ipynb and its jupytext .py) and README python block."""
    cells = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        for i, cell in enumerate(json.loads(path.read_text())["cells"]):
            if cell["cell_type"] == "code":
                cells.append((f"{path.name} cell {i}", "".join(cell["source"])))
    for path in sorted((ROOT / "notebooks").glob("*.py")):
        cells.append((path.name, path.read_text()))
    for i, block in enumerate(re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)):
        cells.append((f"README python block {i}", block))
    return cells


def _imported_names(source: str) -> set[tuple[str, str]]:
    """(module, name) for every ``from cae_lib... import name`` and every ``plots.x`` / ``widgets.x``."""
    source = "\n".join(l for l in source.splitlines() if not l.lstrip().startswith(("%", "!")))
    tree = ast.parse(source)
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("cae_lib"):
            found |= {(node.module, a.name) for a in node.names}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in ("plots", "widgets"):
            found.add((f"cae_lib.{node.value.id}", node.attr))
    return found


def test_every_name_the_notebooks_and_readme_import_exists() -> None:
    cells = _code_cells()
    assert len(cells) > 20, "no notebook cells found"
    missing = []
    for where, source in cells:
        for module, name in sorted(_imported_names(source)):
            if not _provides(module, name):
                missing.append(f"{where}: from {module} import {name}")
    assert not missing, "\n".join(missing)
