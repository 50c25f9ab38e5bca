"""Fixtures for the execution core: diagnostic pipelines, backends, fast timings, workers."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from executions.backends import get_backend
from executions.backends.local import LocalBackend
from executions.backends.stub import StubBackend
from executions.pipelines import register_diagnostic_pipelines
from tests.executions.fakes import HANDLER
from tests.support.celery_worker import (  # noqa: F401 - fixtures used by worker tests
    celery_database_url,
    celery_worker,
)
from tests.support.redis_server import redis_server  # noqa: F401 - fixture for outage tests

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
def stub_backend(settings: Any, fast: Any) -> Iterator[StubBackend]:
    settings.EXECUTION_BACKEND = "stub"
    backend = get_backend()
    assert isinstance(backend, StubBackend)
    backend.reset()
    yield backend
    backend.reset()


@pytest.fixture
def local_backend(settings: Any, fast: Any) -> Iterator[LocalBackend]:
    settings.EXECUTION_BACKEND = "local"
    backend = get_backend()
    assert isinstance(backend, LocalBackend)
    yield backend
    assert backend.wait_idle(timeout=30), "scheduled local runs did not finish"


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
