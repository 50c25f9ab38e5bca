"""No naive UTC timestamps anywhere in the project's own source."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.embedded

FORBIDDEN = re.compile(r"\butcnow\s*\(|\butcfromtimestamp\s*\(")
SKIP_DIRS = {".venv", "var", ".git", "__pycache__", "build", "dist"}


def project_sources(root: Path) -> list[Path]:
    return [
        path
        for path in root.rglob("*.py")
        if not SKIP_DIRS.intersection(path.relative_to(root).parts)
    ]


def test_no_naive_utcnow_calls(project_root: Path) -> None:
    sources = project_sources(project_root)
    assert len(sources) > 10
    this_file = Path(__file__).resolve()
    offenders = [
        f"{path.relative_to(project_root)}:{lineno}"
        for path in sources
        if path.resolve() != this_file
        for lineno, line in enumerate(path.read_text().splitlines(), 1)
        if FORBIDDEN.search(line)
    ]
    assert offenders == []
