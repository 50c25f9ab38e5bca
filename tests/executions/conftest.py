"""Fixtures for the execution core: diagnostic pipelines, fast timings, the workers' environment."""

from __future__ import annotations

from typing import Any

import pytest

from executions.pipelines import register_diagnostic_pipelines
from tests.executions.fakes import HANDLER

# Timings small enough for a suite that kills workers and waits for reapers.
FAST_SETTINGS: dict[str, Any] = {
    "SPINE_HEARTBEAT_SECONDS": 1,
    "SPINE_REAP_AFTER_SECONDS": 3,
    "SPINE_SWEEP_AFTER_SECONDS": 1,
    "SPINE_LOCK_RETRY_SECONDS": 1,
    "SPINE_TIME_LIMIT_GRACE_SECONDS": 1,
    "SPINE_FAILURE_HANDLER": HANDLER,
}


@pytest.fixture(scope="session", autouse=True)
def diagnostic_pipelines() -> None:
    register_diagnostic_pipelines()


@pytest.fixture
def fast(settings: Any) -> Any:
    """Short heartbeats, reaper and sweeper thresholds; failures handed to the fake."""
    for name, value in FAST_SETTINGS.items():
        setattr(settings, name, value)
    return settings


@pytest.fixture
def backend_settings(fast: Any) -> Any:
    """The backend and worker fixtures run with the short timings."""
    return fast


@pytest.fixture(scope="module")
def celery_worker_env() -> dict[str, str]:
    """The worker's side of FAST_SETTINGS."""
    return {
        "SPINE_HEARTBEAT_SECONDS": "1",
        "SPINE_REAP_AFTER_SECONDS": "3",
        "SPINE_SWEEP_AFTER_SECONDS": "1",
        "SPINE_LOCK_RETRY_SECONDS": "1",
        "SPINE_TIME_LIMIT_GRACE_SECONDS": "1",
        "SPINE_FAILURE_HANDLER": HANDLER,
    }
