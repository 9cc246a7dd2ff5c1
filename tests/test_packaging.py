"""The three dependency lists (pyproject, conda, Binder) must agree, and the CI entry point must call the README's test command."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
CONDA_NAMES = {"pytorch": "torch"}  # conda-forge name -> PyPI name
NOT_PACKAGES = {"python", "pip"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~ \[]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


def pyproject_packages() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {_name(r) for r in project["dependencies"]}
    for extra in ("notebooks", "test"):
        names |= {_name(r) for r in project["optional-dependencies"][extra]}
    return names


def environment_packages(path: Path) -> set[str]:
    env = yaml.safe_load(path.read_text())
    names = set()
    for dep in env["dependencies"]:
        items = dep["pip"] if isinstance(dep, dict) else [dep]
        for item in items:
            if item.startswith("-"):  # pip options such as --extra-index-url or -e .
                continue
            name = _name(item)
            names.add(CONDA_NAMES.get(name, name))
    return names - NOT_PACKAGES


def test_conda_environment_lists_the_pyproject_packages():
    assert environment_packages(ROOT / "environment.yml") == pyproject_packages()


def test_binder_environment_parses_and_lists_the_pyproject_packages():
    assert environment_packages(ROOT / "binder" / "environment.yml") == pyproject_packages()


def test_binder_uses_cpu_only_torch_and_a_strict_postbuild():
    text = (ROOT / "binder" / "environment.yml").read_text()
    assert "download.pytorch.org/whl/cpu" in text
    post = (ROOT / "binder" / "postBuild").read_text().splitlines()
    assert "set -e" in [line.strip() for line in post[:3]]


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in readme and "make test" in ci
