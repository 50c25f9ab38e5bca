"""The OTC app's rooms, read from its source: who may import whom inside ``otc``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

OTC = Path(__file__).resolve().parents[2] / "otc"


def _module(path: Path) -> str:
    parts = path.relative_to(OTC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


SOURCES = {
    _module(path): path for path in sorted(OTC.rglob("*.py")) if "migrations" not in path.parts
}


def _importers_of(prefix: str) -> dict[str, set[str]]:
    found = {}
    for module, path in SOURCES.items():
        hits = {n for n in _imports(path) if n == prefix or n.startswith(f"{prefix}.")}
        if hits:
            found[module] = hits
    return found


def _inside(module: str, room: str) -> bool:
    return module == room or module.startswith(f"{room}.")


def test_only_the_pipelines_import_the_pipelines() -> None:
    """Params live in ``otc.params``: the API, commands and services need no pipeline
    module (the backfill command's file naming is the one exception)."""
    outside = {
        module for module in _importers_of("otc.pipelines") if not _inside(module, "otc.pipelines")
    }
    assert outside == {"otc.management.commands.backfill"}


def test_pipeline_modules_import_steps_not_each_other() -> None:
    for module, hits in _importers_of("otc.pipelines").items():
        if _inside(module, "otc.pipelines") and module != "otc.pipelines":
            assert {_base(h) for h in hits} <= {"otc.pipelines.steps"}, module


def _base(name: str) -> str:
    return ".".join(name.split(".")[:3])


def test_services_and_selectors_keep_to_their_side() -> None:
    """Writes do not go through reads' modules and reads never call a writer."""
    assert not {m for m in _importers_of("otc.selectors") if _inside(m, "otc.services")}
    assert not {m for m in _importers_of("otc.services") if _inside(m, "otc.selectors")}


def test_the_lower_rooms_import_no_door() -> None:
    """Models, params, services, selectors and sample data import no API, admin,
    command or pipeline module of the app."""
    doors = ("otc.api", "otc.api_files", "otc.admin", "otc.admin_intake", "otc.cli")
    doors += ("otc.management", "otc.pipelines", "otc.serializers", "otc.filters")
    lower = ("otc.models", "otc.params", "otc.services", "otc.selectors", "otc.sample")
    for module, path in SOURCES.items():
        if any(_inside(module, room) for room in lower):
            wrong = {n for n in _imports(path) if any(_inside(n, door) for door in doors)}
            assert not wrong, f"{module} imports {sorted(wrong)}"


def test_no_import_at_the_bottom_of_a_module() -> None:
    for module, path in SOURCES.items():
        assert "noqa: E402" not in path.read_text(), module
