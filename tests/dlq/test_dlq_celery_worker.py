"""End to end on a real Celery worker: a failure is parked by the worker, a replay runs.

The test process only dispatches and replays (through the Dispatcher, onto Redis);
the worker process runs the pipelines and parks the failures, exactly as in
production. Rows must be committed for the worker to see them: ``transaction=True``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection

from dlq import services
from dlq.models import DeadLetter, Resolution
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]


def wait_for(predicate: Callable[[], Any], *, timeout: float = 60, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture
def celery_backend(settings: Any, celery_worker: Any) -> Any:
    if connection.vendor != "postgresql" or not settings.REDIS_URL:
        pytest.skip("a real worker needs PostgreSQL and Redis")
    settings.EXECUTION_BACKEND = "celery"
    settings.SPINE_FAILURE_HANDLER = "dlq.services.park"
    return celery_worker


def test_failure_is_parked_by_the_worker_and_a_replay_runs(celery_backend: Any):
    worker = celery_backend
    failed = dispatch("diag.fail", {"message": "worker-side failure"}, trigger_source="api")

    letter = wait_for(
        lambda: DeadLetter.objects.filter(execution=failed).first(),
        what=f"a dead letter for {failed.pk}\n{worker.log()[-3000:]}",
    )
    failed.refresh_from_db()
    assert failed.status == ExecutionStatus.FAILED
    assert letter.error == "RuntimeError: worker-side failure"
    assert "Traceback (most recent call last)" in letter.traceback
    assert letter.attempts == 1 and letter.is_open

    replay = services.retry(letter, by=None, note="replayed by the worker test")
    assert replay.parent_id == failed.pk and replay.trigger_source == TriggerSource.RETRY
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED and letter.replay_execution_id == replay.pk

    # The replay really runs on the worker (and, being diag.fail, fails again).
    def replay_finished() -> Execution | None:
        replay.refresh_from_db()
        return replay if replay.status == ExecutionStatus.FAILED else None

    wait_for(replay_finished, what=f"replay {replay.pk} to run\n{worker.log()[-3000:]}")
    started = replay.events.get(type="started")
    assert started.data["attempt"] == 2
    second = wait_for(
        lambda: DeadLetter.objects.filter(execution=replay).first(),
        what="the replay's dead letter",
    )
    assert second.previous_id == letter.pk and second.attempts == 2
