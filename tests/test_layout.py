"""The daemon's modules import each other in one direction, and connectors see only the kit.

A cycle is how `cli` and `demo` ended up importing each other, and how a settings module grows a dependency on
the code that sends e-mail; a lazy import inside a function hides it from Python but not from a reader. Imports
inside functions count here too.

The boundary: a connector imports `retsync.kit` and nothing else of retsync (so the daemon's insides can change
without breaking a connector written elsewhere), never another connector; the kit imports nothing outside
itself; the daemon never names a connector.
"""

from __future__ import annotations

import ast
from pathlib import Path

import retsync
import retsync_connectors

ROOT = Path(retsync.__file__).parent


CONNECTORS = Path(retsync_connectors.__file__).parent
TEMPLATE = ROOT.parent / "examples" / "connector-template"


def imported_modules(path: Path) -> set[str]:
    """Every absolute module name a file imports, at any depth (`from a import b` counts as `a` and `a.b`)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def _outside_the_kit(names: set[str]) -> set[str]:
    """The retsync modules among `names` that are not the kit (the package root only carries `__version__`)."""
    return {name for name in names if name.startswith("retsync.")
            and not (name == "retsync.kit" or name.startswith("retsync.kit.") or name == "retsync.__version__")}


def connector_sources() -> dict[str, list[Path]]:
    """Each connector package (the bundled ones and the template) -> its source files, tests excluded."""
    packages = {f"retsync_connectors.{path.name}": sorted(path.glob("*.py"))
                for path in CONNECTORS.iterdir() if (path / "__init__.py").exists()}
    for package in (TEMPLATE / "src").iterdir() if (TEMPLATE / "src").is_dir() else ():
        packages[package.name] = sorted(package.glob("*.py"))
    return packages


def test_connectors_import_only_the_kit_and_never_each_other() -> None:
    packages = connector_sources()
    assert len(packages) >= 5
    problems = []
    for package, files in packages.items():
        for path in files:
            names = imported_modules(path)
            problems += [f"{path}: {name}" for name in sorted(_outside_the_kit(names))]
            problems += [f"{path}: {name}" for name in sorted(names) if name.split(".")[:2] != package.split(".")[:2]
                         and any(name == other or name.startswith(other + ".") for other in packages if other != package)]
    assert problems == []


def test_the_kit_imports_nothing_of_the_daemon() -> None:
    problems = [f"{path}: {name}" for path in sorted((ROOT / "kit").glob("*.py"))
                for name in sorted(_outside_the_kit(imported_modules(path)))]
    assert problems == []


def test_the_daemon_names_no_connector() -> None:
    problems = [f"{path}: {name}" for path in sorted(ROOT.rglob("*.py")) for name in sorted(imported_modules(path))
                if name.startswith("retsync_connectors") or "connector_template" in name]
    assert problems == []


def test_the_boundary_check_sees_a_connector_reaching_into_the_daemon(tmp_path: Path) -> None:
    sneaky = tmp_path / "connector.py"
    sneaky.write_text("def push():\n    from retsync.outbox.push import Outbox\n    from retsync.kit.http import ApiError\n")
    assert _outside_the_kit(imported_modules(sneaky)) == {"retsync.outbox.push", "retsync.outbox.push.Outbox"}


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
    assert "retsync.app.tables" in graph["retsync.app.demo"], "the demo prints through retsync.app.tables, not through the CLI"
    graph["retsync.app.tables"].add("retsync.app.demo")  # as if the table module reached back into the demo
    assert cycles(graph) == [["retsync.app.demo", "retsync.app.tables"]]
