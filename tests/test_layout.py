"""The shape of the code, read from its source: arrows run one way between the package's modules, and tests share
helpers through helper modules and conftest.py fixtures, not through each other."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "emnist_study"


def package_imports(tree: ast.AST, modules: set[str]) -> set[str]:
    """The package's modules that a module's source imports, wherever the import stands (a function's lazy import
    counts): `from . import x`, `from .x import y`, `from emnist_study import x`, `from emnist_study.x import y`,
    `import emnist_study.x`. A name that is no module (`from . import NAME`) counts as the package's __init__."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level > 0:
                base = node.module  # `from . import x`: None; `from .x import y`: "x"
            elif node.module == PACKAGE or (node.module or "").startswith(PACKAGE + "."):
                base = node.module.removeprefix(PACKAGE).removeprefix(".") or None
            else:
                continue
            if base is None:
                found |= {a.name if a.name in modules else "__init__" for a in node.names}
            else:
                found.add(base.split(".")[0])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == PACKAGE:
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    return found


def import_graph(directory: Path) -> dict[str, set[str]]:
    """{module: the package's modules it imports} for every module of the package in `directory`."""
    files = {path.stem: path for path in sorted(directory.glob("*.py"))}
    return {name: package_imports(ast.parse(path.read_text(), str(path)), set(files)) - {name}
            for name, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as [a, b, ..., a], or None where it has none."""
    state = {}  # absent: not seen; 1: on the current path; 2: done, no cycle through it
    path = []

    def visit(node):
        state[node] = 1
        path.append(node)
        for successor in sorted(graph.get(node, ())):
            if state.get(successor) == 1:
                return path[path.index(successor):] + [successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_import_reader_sees_every_form_and_the_cycle_finder_finds_cycles():
    source = """
import numpy
import emnist_study.idx
from . import data, VERSION
from .sources import fetch
from emnist_study import byclass
from emnist_study.errors import UserError

def later():
    from .training import train  # a lazy import is still an arrow
"""
    modules = {"idx", "data", "sources", "byclass", "errors", "training"}
    assert package_imports(ast.parse(source), modules) == modules | {"__init__"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"b"}}) == ["b", "c", "b"]


def test_the_package_has_no_import_cycle():
    graph = import_graph(ROOT / PACKAGE)
    assert {"data", "byclass", "sources"} <= set(graph)
    cycle = find_cycle(graph)
    assert cycle is None, f"{PACKAGE} has an import cycle: {' -> '.join(cycle)}"


def imported_modules(tree: ast.AST) -> set[str]:
    """The top-level names of every module a test file imports (`from tests import test_x` counts as test_x)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if node.level > 0 or parts[0] == "tests":
                inner = [p for p in parts if p and p != "tests"]
                names |= {inner[0]} if inner else {alias.name for alias in node.names}
            else:
                names.add(parts[0])
    return names


def is_test_module(name: str) -> bool:
    return name.startswith("test_") or name == "conftest"


def test_no_test_module_imports_another():
    offenders = {}
    for path in sorted((ROOT / "tests").rglob("*.py")):
        imported = {name for name in imported_modules(ast.parse(path.read_text(), str(path))) if is_test_module(name)}
        if imported:
            offenders[str(path.relative_to(ROOT))] = sorted(imported)
    assert not offenders, ("test modules import other test modules (shared helpers belong in a helper module or "
                           f"conftest.py fixtures): {offenders}")
