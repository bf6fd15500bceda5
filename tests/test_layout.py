"""The package layout: imports point one way (front ends -> sampling -> models), no cycles, nothing imports the CLI.

Reads every module's imports (module level and inside functions) with ``ast``, so the
check needs no import of the package and fails on the first import against the layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "magicanimate"

# What each part of the package may import (besides itself). Lower layers never import higher ones.
ALLOWED = {
    "errors": set(),
    "options": {"errors"},
    "models": set(),
    "runtime": {"errors"},
    "io": {"errors", "options"},
    "weights": {"errors", "models"},
    "synthetic": {"errors", "io"},
    "densepose": {"errors", "io", "runtime", "weights"},
    "sampling": {"errors", "options", "models", "io", "runtime", "weights"},
    "metrics": {"errors", "io", "weights"},
    "training": {"errors", "options", "models", "io", "runtime", "weights", "sampling", "synthetic"},
    "tools": {"errors", "options", "models", "io", "runtime", "weights", "sampling", "synthetic", "metrics",
              "densepose"},
    "app": {"errors", "options", "io", "runtime", "sampling", "synthetic", "densepose"},
    "cli": {"errors", "options", "models", "io", "runtime", "weights", "sampling", "synthetic", "metrics", "densepose",
            "training", "tools", "app", "__init__"},
    # entry points: `python -m magicanimate`, `python -m magicanimate.bench` / `.demo`
    "__main__": {"cli"},
    "bench": {"tools"},
    "demo": {"tools"},
    "__init__": {"sampling", "weights"},  # MagicAnimate, Progress; MINI_WEIGHTS
}


def module_name(path: Path) -> str:
    """Dotted name of a module file under the package."""
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def part_of(module: str) -> str:
    """The top-level part ("sampling", "options", ...) a dotted module name belongs to."""
    parts = module.split(".")
    if len(parts) == 1:
        return "__init__"
    return parts[1]


def imports_of(path: Path) -> set[str]:
    """The magicanimate modules ``path`` imports (``from X import Y`` counts as X.Y when X.Y is a module)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("magicanimate"):
            for alias in node.names:
                candidate = f"{node.module}.{alias.name}"
                found.add(candidate if candidate in MODULES else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            found.add("<relative>")
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("magicanimate"))
    return found


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) & set(MODULES) | (imports_of(path) & {"<relative>"}) for name, path in MODULES.items()}


def test_no_relative_imports():
    assert [m for m, deps in GRAPH.items() if "<relative>" in deps] == []


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_follow_the_layers(module):
    part = part_of(module)
    assert part in ALLOWED, f"{module}: new top-level part {part!r}; add it to ALLOWED with its layer"
    wrong = sorted(d for d in GRAPH[module] if part_of(d) != part and part_of(d) not in ALLOWED[part])
    assert wrong == [], f"{module} ({part}) may not import {wrong}"


def test_nothing_outside_the_cli_imports_it():
    offenders = sorted(f"{m} -> {d}" for m, deps in GRAPH.items() for d in deps
                       if part_of(d) == "cli" and part_of(m) not in ("cli", "__main__"))
    assert offenders == []


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for dep in graph.get(node, set()) - {"<relative>"}:
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for name in sorted(graph):
        if name not in index:
            visit(name)
    return cycles


def test_no_import_cycles():
    assert find_cycles(GRAPH) == []


def test_the_cycle_finder_finds_a_planted_cycle():
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycles(planted) == [["a", "b", "c"]]
