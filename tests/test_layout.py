"""The daemon's modules import each other in one direction: no module needs one that needs it back.

A cycle is how `cli` and `demo` ended up importing each other, and how a settings module grows a dependency on
the code that sends e-mail; a lazy import inside a function hides it from Python but not from a reader. Imports
inside functions count here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import retsync

ROOT = Path(retsync.__file__).parent


def _module_name(path: Path) -> str:
    parts = ("retsync", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Each retsync module -> the retsync modules it imports (`from pkg import sub` names the submodule)."""
    modules = {_module_name(path): path for path in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        needs: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    submodule = f"{node.module}.{alias.name}"
                    needs.add(submodule if submodule in modules else node.module)
            elif isinstance(node, ast.Import):
                needs.update(alias.name for alias in node.names)
        # a package's own submodules may use their package's other submodules: that is not a cycle
        graph[name] = {dep for dep in needs if dep in modules and dep != name and not name.startswith(dep + ".")}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every set of modules that reach each other (Tarjan's strongly connected components of more than one)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        for dep in sorted(graph[module]):
            if dep not in index:
                visit(dep)
                low[module] = min(low[module], low[dep])
            elif dep in stack:
                low[module] = min(low[module], index[dep])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_of_the_daemon_imports_one_that_imports_it_back() -> None:
    assert cycles(import_graph()) == []


def test_the_check_sees_a_cycle_hidden_in_a_function() -> None:
    graph = import_graph()
    assert "retsync.tables" in graph["retsync.demo"], "the demo prints through retsync.tables, not through the CLI"
    graph["retsync.tables"].add("retsync.demo")  # as if the table module reached back into the demo
    assert cycles(graph) == [["retsync.demo", "retsync.tables"]]
