"""Fixtures for the dead-letter queue: real failures driven through the Dispatcher and
runner, a pipeline with a retry policy, and users with and without DLQ permissions."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.contrib.auth.models import User

from dlq.models import DeadLetter
from executions.dispatcher import dispatch
from executions.models import Execution, TriggerSource
from executions.pipelines import register_diagnostic_pipelines
from executions.registry import Pipeline, registry
from tests.dlq.dlq_support import (
    FLAKY,
    FLAKY_POLICY,
    FLAKY_STATE,
    FlakyParams,
    flaky,
    make_user,
)


@pytest.fixture(scope="session", autouse=True)
def diagnostic_pipelines() -> None:
    register_diagnostic_pipelines()


@pytest.fixture
def flaky_pipeline() -> Iterator[Pipeline]:
    """A pipeline with two automatic retries, 10 s backoff capped at 15 s."""
    FLAKY_STATE["fail"] = True
    pipeline = registry.register(
        Pipeline(
            name=FLAKY,
            handler=flaky,
            params=FlakyParams,
            description="Fails until told otherwise.",
            timeout_seconds=30,
            retry=FLAKY_POLICY,
        )
    )
    yield pipeline
    registry.unregister(FLAKY)
    FLAKY_STATE["fail"] = True


@pytest.fixture
def dlq_settings(settings: Any) -> Any:
    """Failures go to the real dead-letter queue."""
    settings.SPINE_FAILURE_HANDLER = "dlq.services.park"
    return settings


@pytest.fixture
def backend_settings(dlq_settings: Any) -> Any:
    """The backend fixtures hand failures to the real dead-letter queue."""
    return dlq_settings


@pytest.fixture
def run_failure(
    local_backend: Any, django_capture_on_commit_callbacks: Any
) -> Callable[..., tuple[Execution, DeadLetter]]:
    """Dispatch a pipeline that fails, run it on the local backend, return it and its letter."""

    def run(
        pipeline: str = "diag.fail", params: dict[str, Any] | None = None
    ) -> tuple[Execution, DeadLetter]:
        with django_capture_on_commit_callbacks(execute=True):
            execution = dispatch(
                pipeline,
                params if params is not None else {"message": "boom: upstream said no"},
                trigger_source=TriggerSource.CLI,
            )
        execution.refresh_from_db()
        return execution, DeadLetter.objects.get(execution=execution)

    return run


@pytest.fixture
def viewer(db: None) -> User:
    """Staff who may look at dead letters but not act on them."""
    return make_user(f"viewer-{uuid.uuid4().hex[:6]}", "dlq.view_deadletter")


@pytest.fixture
def operator(db: None) -> User:
    """Staff who may replay, resolve and discard dead letters."""
    return make_user(
        f"operator-{uuid.uuid4().hex[:6]}",
        "dlq.view_deadletter",
        "dlq.change_deadletter",
        "dlq.replay_deadletter",
    )


@pytest.fixture(scope="module")
def celery_worker_env() -> dict[str, str]:
    """The worker hands failures to the real dead-letter queue."""
    return {"SPINE_FAILURE_HANDLER": "dlq.services.park", "SPINE_HEARTBEAT_SECONDS": "1"}
