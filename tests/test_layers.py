"""The house's layering, read from the source: no import from a higher floor, no circles.

docs/architecture.md describes the floors; the checker is also run on a small synthetic
tree, so a checker that stopped seeing imports fails here instead of passing vacuously.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

PROJECT_ROOT = Path(__file__).resolve().parents[1]

#: Bottom to top: a module may import its own floor and the floors below it.
FLOORS = ("spine", "executions", "dlq", "otc", "ops")

#: Modules that may import any floor, and why.
WIRING = {
    "spine.urls": "the project's URL root mounts every app's views",
    "spine.api.urls": "the API's URL root mounts every app's endpoints",
    "spine.celery": "the Celery app loads every app's tasks and beat schedule",
}

#: Calls that import the module named by their (literal) first argument.
IMPORT_CALLS = {"import_module", "import_string", "__import__"}


@dataclass(frozen=True)
class Import:
    module: str
    imported: str
    line: int


def floor(module: str) -> str:
    return module.split(".", 1)[0]


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path) -> dict[str, Path]:
    """Dotted name → path of every module of every floor package under ``root``."""
    modules = {}
    for name in FLOORS:
        package = root / name
        if not (package / "__init__.py").exists():
            continue
        for path in sorted(package.rglob("*.py")):
            if "__pycache__" not in path.parts:
                modules[module_name(root, path)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _import_nodes(node: ast.AST) -> Iterator[ast.AST]:
    """Every import statement and import call under ``node``, at any depth (functions
    too), except in ``if TYPE_CHECKING:`` blocks, which never run."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for other in child.orelse:
                yield from _import_nodes(other)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        elif isinstance(child, ast.Call) and _called_name(child.func) in IMPORT_CALLS:
            yield child
        yield from _import_nodes(child)


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None


def _resolve(name: str, modules: dict[str, Path]) -> str | None:
    """The project module ``name`` loads: itself, or the package holding the attribute."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _targets(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Dotted names imported by one node (a relative import resolved against ``module``)."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        if node.level:
            package = module if is_package else module.rpartition(".")[0]
            for _ in range(node.level - 1):
                package = package.rpartition(".")[0]
            base = f"{package}.{base}" if base else package
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    elif isinstance(node, ast.Call) and node.args:
        arg = node.args[0]
        if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
            yield arg.value


def project_imports(root: Path) -> list[Import]:
    """Every import of one project module by another (not of itself)."""
    modules = project_modules(root)
    found: set[Import] = set()
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _import_nodes(tree):
            names = list(_targets(node, module, is_package))
            if isinstance(node, ast.ImportFrom):
                # ``from pkg import name``: the submodule ``pkg.name`` if there is one, else pkg.
                base, *attrs = names
                names = [a for a in attrs if a in modules] or [base]
                if len(names) < len(attrs):
                    names.append(base)
            for name in names:
                target = _resolve(name, modules)
                if target is not None and target != module:
                    found.add(Import(module, target, getattr(node, "lineno", 0)))
    return sorted(found, key=lambda i: (i.module, i.imported, i.line))


def upward_imports(imports: list[Import]) -> list[str]:
    """``module -> imported (floor a < floor b)`` for each import of a higher floor."""
    rank = {name: index for index, name in enumerate(FLOORS)}
    lines = {
        f"{i.module} -> {i.imported} ({floor(i.module)} < {floor(i.imported)})"
        for i in imports
        if i.module not in WIRING and rank[floor(i.module)] < rank[floor(i.imported)]
    }
    return sorted(lines)


def import_cycles(imports: list[Import]) -> list[list[str]]:
    """The circles of the module graph: one shortest cycle through each module of every
    strongly connected component (Tarjan), each listed from its smallest name."""
    graph: dict[str, set[str]] = {}
    for i in imports:
        graph.setdefault(i.module, set()).add(i.imported)
        graph.setdefault(i.imported, set())
    cycles = set()
    for component in _components(graph):
        for start in sorted(component):
            cycle = _shortest_cycle(graph, start, component)
            smallest = cycle.index(min(cycle))
            cycles.add(tuple(cycle[smallest:] + cycle[:smallest]))
    return [[*cycle, cycle[0]] for cycle in sorted(cycles)]


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph[node]):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return components


def _shortest_cycle(graph: dict[str, set[str]], start: str, within: set[str]) -> list[str]:
    """Breadth first from ``start`` back to it, inside its component."""
    parents: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for succ in sorted(graph[node] & within):
                if succ == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(parents[path[-1]])
                    return path[::-1]
                if succ not in parents:
                    parents[succ] = node
                    following.append(succ)
        frontier = following
    raise AssertionError(f"{start} is in a component but on no cycle")


def layering_report(root: Path) -> str:
    imports = project_imports(root)
    upward = upward_imports(imports)
    cycles = import_cycles(imports)
    lines = []
    if upward:
        lines += [f"{len(upward)} imports from a higher floor:", *(f"  {u}" for u in upward)]
    if cycles:
        lines += [f"{len(cycles)} import circles:", *(f"  {' -> '.join(c)}" for c in cycles)]
    return "\n".join(lines)


# -- the project ---------------------------------------------------------------------------


def test_the_checker_sees_the_project() -> None:
    imports = project_imports(PROJECT_ROOT)
    assert len(project_modules(PROJECT_ROOT)) > 50
    assert any(
        (i.module, i.imported) == ("executions.dispatcher", "executions.models") for i in imports
    )
    assert set(WIRING) <= set(project_modules(PROJECT_ROOT))


def test_no_module_imports_a_higher_floor_and_there_are_no_circles() -> None:
    report = layering_report(PROJECT_ROOT)
    if report:
        pytest.fail(f"floors {' < '.join(FLOORS)} (docs/architecture.md)\n{report}", pytrace=False)


# -- the checker on a tree of its own ------------------------------------------------------


def write_tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


SAMPLE = {
    "spine/__init__.py": "",
    "spine/time.py": "import datetime\n",
    "spine/urls.py": "from otc import views\n",  # wiring: allowed
    "spine/health.py": (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from executions.models import Execution\n"  # never runs
    ),
    "executions/__init__.py": "",
    "executions/models.py": "from spine.time import utc_now\n",
    "executions/retention.py": (
        "from . import models\n"
        "def purge():\n    from dlq.models import DeadLetter\n"  # lazy, still upward
    ),
    "executions/services.py": "def cancel():\n    from executions.dispatcher import dispatch\n",
    "executions/dispatcher.py": "from .services import record\n",
    "dlq/__init__.py": "",
    "dlq/models.py": "from executions import models\n",
    "otc/__init__.py": "",
    "otc/views.py": "import importlib\nimportlib.import_module('ops.overview')\n",
    "ops/__init__.py": "",
    "ops/overview.py": "from otc import views\n",
}


def test_the_checker_finds_an_upward_import_and_a_circle(tmp_path: Path) -> None:
    root = write_tree(tmp_path, SAMPLE)
    imports = project_imports(root)
    assert upward_imports(imports) == [
        "executions.retention -> dlq.models (executions < dlq)",
        "otc.views -> ops.overview (otc < ops)",
    ]
    assert import_cycles(imports) == [
        ["executions.dispatcher", "executions.services", "executions.dispatcher"],
        ["ops.overview", "otc.views", "ops.overview"],
    ]
    report = layering_report(root)
    assert "2 imports from a higher floor" in report
    assert "executions.dispatcher -> executions.services -> executions.dispatcher" in report


def test_relative_and_submodule_imports_resolve_to_modules(tmp_path: Path) -> None:
    root = write_tree(tmp_path, SAMPLE)
    pairs = {(i.module, i.imported) for i in project_imports(root)}
    assert ("executions.retention", "executions.models") in pairs  # from . import models
    assert ("dlq.models", "executions.models") in pairs  # from executions import models
    assert ("executions.dispatcher", "executions.services") in pairs
    assert not any(module == "spine.health" for module, _ in pairs)  # TYPE_CHECKING only


def test_a_clean_tree_reports_nothing(tmp_path: Path) -> None:
    clean = {k: v for k, v in SAMPLE.items() if not k.startswith(("executions/", "otc/", "ops/"))}
    clean["spine/urls.py"] = "from dlq import models\n"
    clean.update({"executions/__init__.py": "", "executions/models.py": "import spine.time\n"})
    assert layering_report(write_tree(tmp_path, clean)) == ""
