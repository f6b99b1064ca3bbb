"""The package is a tree, not a web: no module of ntheap imports, directly or through others, a
module that imports it (style.md, "A Python package that is a tree"). Every import statement
counts, at module level or inside a function, except those under ``if TYPE_CHECKING:``, which
never run."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, List, Set

import ntheap

PACKAGE = Path(ntheap.__file__).parent


def _imports(path: Path) -> Set[str]:
    """The ntheap modules that ``path`` imports at run time (``ntheap`` itself for ``from . import x``
    of a name defined in ``__init__``)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skip: Set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for b in node.body for n in ast.walk(b))
    mods = {p.name.split(".")[0] for p in PACKAGE.iterdir() if p.suffix in (".py", ".pyi", ".so", ".pyd")}
    out: Set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name if a.name in mods else "__init__" for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ntheap"):
            parts = (node.module or "").split(".")
            out.add(parts[1] if len(parts) > 1 else "__init__")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name.startswith("ntheap."):
                    out.add(a.name.split(".")[1])
    return out & (mods | {"__init__"})


def _graph() -> Dict[str, Set[str]]:
    return {p.stem: _imports(p) - {p.stem} for p in PACKAGE.glob("*.py")}


def _cycle(graph: Dict[str, Set[str]]) -> List[str]:
    state: Dict[str, int] = {}
    path: List[str] = []

    def visit(m: str) -> List[str]:
        state[m] = 1
        path.append(m)
        for n in sorted(graph.get(m, ())):
            if state.get(n) == 1:
                return path[path.index(n):] + [n]
            if state.get(n) is None:
                found = visit(n)
                if found:
                    return found
        state[m] = 2
        path.pop()
        return []

    for m in sorted(graph):
        if state.get(m) is None:
            found = visit(m)
            if found:
                return found
    return []


def test_the_import_graph_is_acyclic() -> None:
    graph = _graph()
    # __init__ imports the public modules; a module importing the package back is a cycle too.
    cycle = _cycle(graph)
    assert not cycle, " -> ".join(cycle)


def test_the_analysis_facade_is_imported_by_nothing() -> None:
    graph = _graph()
    users = sorted(m for m, deps in graph.items() if "analysis" in deps)
    assert users == [], users


def test_the_checker_sees_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []
