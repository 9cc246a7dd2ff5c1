"""How much code a reader opens to follow one training step: the import closure of some cae_lib modules.

    python tools/import_closure.py                 # the method's core (the default list below)
    python tools/import_closure.py cae_lib.cli     # any modules

Counts the cae_lib modules that the given ones import when Python runs them, followed
transitively: module-level imports only (an import inside a function runs when the function is
called, and one under ``if TYPE_CHECKING:`` never runs). ``--packages`` also counts the
``__init__.py`` of every package on the way, which Python runs as well. Prints one line per file
and the total; ``tests/test_layout.py`` holds the core to its budget.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The method's core: batch -> augment -> encoder -> loss -> trainer step -> embed -> cluster -> Hungarian.
CORE = ("cae_lib.batches", "cae_lib.augment", "cae_lib.models", "cae_lib.losses", "cae_lib.trainer",
        "cae_lib.schedule", "cae_lib.embed", "cae_lib.cluster.estimator", "cae_lib.metrics")


def module_file(name: str) -> Path | None:
    path = ROOT.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def _module_level(body: list[ast.stmt]) -> list[ast.stmt]:
    """The statements that run on import: the body, and the branches of module-level if / try (not TYPE_CHECKING)."""
    out: list[ast.stmt] = []
    for node in body:
        if isinstance(node, ast.If):
            if "TYPE_CHECKING" not in ast.unparse(node.test):
                out += _module_level(node.body) + _module_level(node.orelse)
        elif isinstance(node, ast.Try):
            out += _module_level(node.body) + [s for h in node.handlers for s in _module_level(h.body)] + _module_level(node.finalbody)
        else:
            out.append(node)
    return out


def imports_of(name: str, path: Path, packages: bool) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in _module_level(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("cae_lib")}
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join(base + ([node.module] if node.module else [])) if node.level else (node.module or "")
            if module.startswith("cae_lib"):
                submodules = {f"{module}.{a.name}" for a in node.names if module_file(f"{module}.{a.name}")}
                found |= submodules
                if len(submodules) < len(node.names):  # a name defined in the module itself (or its __init__.py)
                    found.add(module)
    if packages:
        found |= {".".join(m.split(".")[:i]) for m in set(found) for i in range(1, m.count(".") + 1)}
    return found


def closure(modules: tuple[str, ...] | list[str], packages: bool = False) -> dict[str, Path]:
    """``{module name: file}`` of every cae_lib module that importing ``modules`` runs."""
    seen: dict[str, Path] = {}
    todo = list(modules)
    if packages:
        todo += [".".join(m.split(".")[:i]) for m in modules for i in range(1, m.count(".") + 1)]
    while todo:
        name = todo.pop()
        path = module_file(name)
        if name in seen or path is None:
            continue
        seen[name] = path
        todo += imports_of(name, path, packages)
    return seen


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("modules", nargs="*", default=list(CORE))
    parser.add_argument("--packages", action="store_true", help="also count the packages' __init__.py files")
    args = parser.parse_args()
    files = closure(args.modules, args.packages)
    total = 0
    for name, path in sorted(files.items(), key=lambda kv: str(kv[1])):
        n = len(path.read_text().splitlines())
        total += n
        print(f"{n:6d}  {path.relative_to(ROOT)}")
    print(f"{total:6d}  lines in {len(files)} files")


if __name__ == "__main__":
    main()
