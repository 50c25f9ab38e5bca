"""The four invariants, proven by reading the project's own source.

1. Only the Dispatcher creates executions.
2. Only the runner calls pipeline handlers.
3. The API, admin and management commands never import the runner.
4. Every backend has the same ``submit()``/``cancel()`` signature.

Each scanner is also run against a small violating sample, so a scanner that silently
stopped matching anything would fail here instead of passing vacuously.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import pytest

import executions.backends
from executions.backends import BACKENDS
from executions.backends.base import ExecutionBackend

pytestmark = pytest.mark.embedded

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SKIP_DIRS = {".venv", "var", ".git", "__pycache__", "build", "dist", "tests", "migrations"}
DISPATCHER = "executions/dispatcher.py"
RUNNER = "executions/runner.py"
REGISTRY = "executions/registry.py"
CREATE_METHODS = {"create", "bulk_create", "get_or_create", "update_or_create"}
RAW_INSERT = re.compile(r"insert\s+into\s+\"?executions_execution\"?[\s(]", re.IGNORECASE)
SURFACE_FILES = {"api.py", "views.py", "serializers.py", "admin.py"}
# The runner's entry points by name, or the runner module imported by string.
DYNAMIC_RUNNER = re.compile(
    r"\brun_pipeline(_task)?\b|(import_module|__import__)\(\s*[\"']executions\.runner"
)


def project_sources() -> dict[str, str]:
    """Relative path → source of every project module (not tests, not migrations)."""
    sources = {}
    for path in PROJECT_ROOT.rglob("*.py"):
        rel = path.relative_to(PROJECT_ROOT)
        if SKIP_DIRS.intersection(rel.parts):
            continue
        sources[rel.as_posix()] = path.read_text()
    return sources


def _execution_names(tree: ast.Module) -> set[str]:
    """Names the module binds to the Execution model (imports, aliases)."""
    names = {"Execution"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith("models"):
            names.update(a.asname or a.name for a in node.names if a.name == "Execution")
    return names


def _chain(node: ast.AST) -> list[str]:
    """``a.b.c`` → ["a", "b", "c"] (empty when the base is not a plain name)."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name):
        parts.append(node.id)
        return parts[::-1]
    return []


def execution_creations(source: str) -> list[int]:
    """Line numbers where the source creates Execution rows."""
    tree = ast.parse(source)
    model_names = _execution_names(tree)
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        chain = _chain(node.func)
        if chain and chain[0] in model_names and len(chain) == 1:
            lines.append(node.lineno)  # Execution(...)
        elif chain and chain[-1] in CREATE_METHODS and len(chain) >= 2:
            if chain[0] in model_names or chain[-2] == "children":
                lines.append(node.lineno)  # Execution.objects.create, parent.children.create
    lines.extend(source.count("\n", 0, m.start()) + 1 for m in RAW_INSERT.finditer(source))
    return lines


def _handler_names(tree: ast.Module) -> set[str]:
    """Functions the module registers as pipeline handlers."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            for deco in node.decorator_list:
                target = deco.func if isinstance(deco, ast.Call) else deco
                if _chain(target)[-1:] == ["pipeline"]:
                    names.add(node.name)
        if isinstance(node, ast.Call) and _chain(node.func)[-1:] == ["Pipeline"]:
            for kw in node.keywords:
                if kw.arg == "handler" and isinstance(kw.value, ast.Name):
                    names.add(kw.value.id)
    return names


def handler_calls(sources: dict[str, str]) -> list[str]:
    """``path:line`` of every handler call outside the runner.

    A call is ``x.handler(...)``, any other use of a ``.handler`` attribute (taking it
    to call later), or a direct call of a registered handler function by name in its
    own module or in a module that imports it.
    """
    trees = {path: ast.parse(src) for path, src in sources.items()}
    handlers_by_module = {
        path.removesuffix(".py").replace("/", "."): _handler_names(tree)
        for path, tree in trees.items()
    }
    found = []
    for path, tree in trees.items():
        if path == RUNNER:
            continue
        module = path.removesuffix(".py").replace("/", ".")
        callable_names = set(handlers_by_module.get(module, set()))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in handlers_by_module:
                registered = handlers_by_module[node.module]
                callable_names.update(
                    a.asname or a.name for a in node.names if a.name in registered
                )
        for node in ast.walk(tree):
            if (
                path != REGISTRY
                and isinstance(node, ast.Attribute)
                and node.attr == "handler"
                and isinstance(node.ctx, ast.Load)
            ):
                found.append(f"{path}:{node.lineno}")
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id in callable_names
            ):
                found.append(f"{path}:{node.lineno}")
    return found


def is_surface_module(path: str) -> bool:
    """API, admin and management-command modules (invariant 3 applies to them)."""
    parts = path.split("/")
    return parts[-1] in SURFACE_FILES or (
        len(parts) >= 3 and parts[-3:-1] == ["management", "commands"]
    )


def runner_imports(path: str, source: str) -> list[int]:
    """Line numbers where a module imports the runner or names its entry points."""
    lines = []
    package = path.split("/")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            if any(a.name.startswith("executions.runner") for a in node.names):
                lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            absolute = f"{package}.{module}" if node.level and package else module
            names = {a.name for a in node.names}
            if (
                absolute.startswith("executions.runner")
                or (absolute in ("executions", "executions.") and "runner" in names)
                or (absolute == "executions.tasks" and "run_pipeline_task" in names)
            ):
                lines.append(node.lineno)
    for m in re.finditer(DYNAMIC_RUNNER, source):
        lines.append(source.count("\n", 0, m.start()) + 1)
    return sorted(set(lines))


# --- the invariants ---------------------------------------------------------------------


def test_only_the_dispatcher_creates_executions() -> None:
    sources = project_sources()
    assert DISPATCHER in sources and len(sources) > 20
    offenders = {
        path: lines
        for path, src in sources.items()
        if path != DISPATCHER and (lines := execution_creations(src))
    }
    assert offenders == {}
    assert execution_creations(sources[DISPATCHER]), "the Dispatcher must be the one creating"


def test_only_the_runner_calls_pipeline_handlers() -> None:
    sources = project_sources()
    assert handler_calls(sources) == []
    assert ".handler(" in sources[RUNNER]


def test_api_admin_and_commands_never_import_the_runner() -> None:
    sources = project_sources()
    surface = [path for path in sources if is_surface_module(path)]
    assert "executions/api.py" in surface or any(p.endswith("admin.py") for p in surface)
    offenders = {path: lines for path in surface if (lines := runner_imports(path, sources[path]))}
    assert offenders == {}


def _backend_classes() -> list[type[ExecutionBackend]]:
    for info in pkgutil.iter_modules(executions.backends.__path__):
        importlib.import_module(f"executions.backends.{info.name}")
    found: list[type[ExecutionBackend]] = []
    pending = list(ExecutionBackend.__subclasses__())
    while pending:
        cls = pending.pop()
        found.append(cls)
        pending.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("executions.")]


def test_every_backend_has_the_same_interface() -> None:
    classes = _backend_classes()
    assert {cls.__name__ for cls in classes} >= {"CeleryBackend", "LocalBackend", "StubBackend"}
    for path in BACKENDS.values():
        module, _, name = path.rpartition(".")
        assert getattr(importlib.import_module(module), name) in classes
    for method in ("submit", "cancel"):
        expected = inspect.signature(getattr(ExecutionBackend, method))
        for cls in classes:
            assert not inspect.isabstract(cls), f"{cls.__name__} leaves methods abstract"
            actual = inspect.signature(getattr(cls, method))
            assert actual == expected, f"{cls.__name__}.{method}{actual} != {expected}"


# --- the scanners catch what they look for --------------------------------------------


@pytest.mark.parametrize(
    "snippet",
    [
        "from executions.models import Execution\nExecution.objects.create(pipeline='x')",
        "from executions.models import Execution as E\nE.objects.bulk_create([])",
        "from executions.models import Execution\nrow = Execution(pipeline='x')",
        "parent.children.create(pipeline='x')",
        "cursor.execute('INSERT INTO executions_execution (id) VALUES (1)')",
    ],
)
def test_creation_scanner_catches(snippet: str) -> None:
    assert execution_creations(snippet)


def test_creation_scanner_ignores_other_models() -> None:
    snippet = (
        "from executions.models import Execution, ExecutionEvent\n"
        "ExecutionEvent.objects.create(type='x')\n"
        "Execution.objects.filter(pk=1).update(status='queued')\n"
    )
    assert execution_creations(snippet) == []


def test_handler_scanner_catches() -> None:
    sources = {
        "otc/pipelines.py": (
            "from executions.registry import pipeline\n"
            "@pipeline('otc.ingest')\ndef ingest(ctx):\n    return {}\n"
            "@pipeline('otc.etl')\ndef etl(ctx):\n    return ingest(ctx)\n"
        ),
        "otc/services/x.py": "from otc.pipelines import ingest\ningest(None)\n",
        "spine/x.py": "registry.get('a').handler(ctx)\n",
    }
    assert sorted(handler_calls(sources)) == [
        "otc/pipelines.py:7",
        "otc/services/x.py:2",
        "spine/x.py:1",
    ]


@pytest.mark.parametrize(
    "snippet",
    [
        "from executions.runner import run_pipeline",
        "import executions.runner",
        "from executions import runner",
        "from .runner import RunContext",
        "from executions.tasks import run_pipeline_task",
        "importlib.import_module('executions.runner')",
        "tasks.run_pipeline_task.delay(str(pk))",
    ],
)
def test_runner_import_scanner_catches(snippet: str) -> None:
    assert runner_imports("executions/api.py", snippet)


def test_logger_names_are_not_imports() -> None:
    assert runner_imports("x/admin.py", 'logging.getLogger("executions.runner")') == []


def test_surface_modules_are_recognised() -> None:
    assert is_surface_module("otc/management/commands/ingest.py")
    assert is_surface_module("dlq/admin.py")
    assert not is_surface_module("executions/dispatcher.py")
