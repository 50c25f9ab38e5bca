"""Diagnostic pipelines are opt-in, and every app's pipelines module is discovered."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from executions.pipelines import DIAGNOSTIC_PIPELINES, register_diagnostic_pipelines
from executions.registry import PipelineRegistry
from spine.config import load_config

pytestmark = [pytest.mark.embedded]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LIST_PIPELINES = (
    "import django; django.setup(); from executions.registry import registry; "
    "print(','.join(registry.names()))"
)


def registered_in_a_fresh_process(**env: str) -> list[str]:
    import os

    result = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", LIST_PIPELINES],
        cwd=PROJECT_ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "spine.settings", **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip().split(",")


def test_the_setting_comes_from_the_environment() -> None:
    assert load_config({}).diagnostic_pipelines is False
    assert load_config({"SPINE_DIAGNOSTIC_PIPELINES": "true"}).diagnostic_pipelines is True


def test_they_are_registered_only_when_switched_on() -> None:
    off = registered_in_a_fresh_process(SPINE_DIAGNOSTIC_PIPELINES="false")
    on = registered_in_a_fresh_process(SPINE_DIAGNOSTIC_PIPELINES="true")
    diag = {p.name for p in DIAGNOSTIC_PIPELINES}
    assert diag == {"diag.noop", "diag.sleep", "diag.fail", "diag.write"}
    assert not diag & set(off)
    assert diag <= set(on)


def test_registration_is_idempotent() -> None:
    target = PipelineRegistry()
    register_diagnostic_pipelines(target)
    register_diagnostic_pipelines(target)
    assert target.names() == ["diag.fail", "diag.noop", "diag.sleep", "diag.write"]
