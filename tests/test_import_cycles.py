"""No import circle in pushlite/, workers/ or config/.

A circle makes what a module sees depend on which of its members was imported
first. The imports are read from the source (every ``import`` and ``from ...
import``, also inside functions), not executed: ``from pkg import name``
depends on ``pkg`` (its ``__init__``) and, when ``name`` is a submodule, on
that module too.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("pushlite", "workers", "config")


def modules(root: Path, packages: tuple[str, ...]) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file under ``packages``."""
    found = {}
    for package in packages:
        for path in (root / package).rglob("*.py"):
            name = ".".join(path.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def import_graph(root: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, set[str]]:
    """Module -> the modules (of ``packages``) it imports."""
    known = modules(root, packages)
    graph = {}
    for name, path in known.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in known)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                if module in known:
                    deps.add(module)
                deps.update(f"{module}.{alias.name}" for alias in node.names if f"{module}.{alias.name}" in known)
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for dep in sorted(graph[node]):
            if dep not in index:
                visit(dep)
                low[node] = min(low[node], low[dep])
            elif dep in on_stack:
                low[node] = min(low[node], index[dep])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph) + 100))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_no_import_cycle(package):
    found = [c for c in cycles(import_graph(ROOT)) if any(m.split(".")[0] == package for m in c)]
    assert not found, "; ".join("modules importing each other in a circle: " + ", ".join(cycle) for cycle in found)


def test_a_cycle_through_a_package_init_is_found(tmp_path):
    """The usual circle: a package's __init__ imports its views, which import
    a sibling through the package (``from . import errors``)."""
    family = tmp_path / "pushlite" / "family"
    family.mkdir(parents=True)
    (tmp_path / "pushlite" / "__init__.py").write_text("")
    (family / "__init__.py").write_text("from . import views\n")
    (family / "views.py").write_text("from . import errors\n")
    (family / "errors.py").write_text("import json\n")
    assert cycles(import_graph(tmp_path, ("pushlite",))) == [["pushlite.family", "pushlite.family.views"]]
    (family / "views.py").write_text("from .errors import render\n")
    assert cycles(import_graph(tmp_path, ("pushlite",))) == []
