"""Executions on a real Celery worker (prefork, 2 processes) over Redis and PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

import pytest

from executions.backends import get_backend
from executions.backends.celery import TASK_NAME, CeleryBackend
from executions.dispatcher import cancel, dispatch
from executions.models import Execution, ExecutionLock, ExecutionStatus
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types, wait_for, wait_for_status
from tests.support.celery_worker import CeleryWorker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
FINAL = (S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED)


@pytest.fixture
def celery_backend(settings: Any, fast: Any, celery_worker: CeleryWorker) -> CeleryBackend:
    settings.EXECUTION_BACKEND = "celery"
    backend = get_backend()
    assert isinstance(backend, CeleryBackend)
    return backend


def test_a_submitted_execution_succeeds_with_its_events_in_order(
    celery_backend: CeleryBackend, celery_worker: CeleryWorker
) -> None:
    execution = dispatch("diag.noop", trigger_source="api")
    wait_for_status(execution, *FINAL)
    assert execution.status == S.SUCCEEDED, celery_worker.log()[-3000:]
    assert execution.result == {"ok": True}
    assert event_types(execution) == ["created", "queued", "started", "succeeded"]
    timestamps = list(execution.events.order_by("id").values_list("timestamp", flat=True))
    assert timestamps == sorted(timestamps)
    started = execution.events.get(type="started").data
    assert started["pid"] != os.getpid(), "it ran in the worker"
    assert execution.created_at <= execution.queued_at <= execution.started_at
    assert execution.started_at <= execution.finished_at


def test_a_failing_execution_is_failed_with_its_traceback(celery_backend: CeleryBackend) -> None:
    execution = dispatch("diag.fail", {"message": "no data for week"}, trigger_source="api")
    wait_for_status(execution, *FINAL)
    assert execution.status == S.FAILED
    assert execution.error == "RuntimeError: no data for week"
    assert execution.traceback.startswith("Traceback (most recent call last)")
    assert "executions/pipelines.py" in execution.traceback
    handed = wait_for(lambda: execution.events.filter(type=EVENT).first())
    assert handed.data["failure_kind"] == "error"


def test_a_slow_execution_is_timed_out_at_its_limit(celery_backend: CeleryBackend) -> None:
    execution = dispatch("diag.sleep", {"seconds": 30}, trigger_source="api")
    wait_for_status(execution, *FINAL)
    assert execution.status == S.TIMED_OUT
    assert execution.error == "timed out: exceeded its time limit of 3s"
    ran = (execution.finished_at - execution.started_at).total_seconds()
    assert 2.5 <= ran < 5, ran
    handed = wait_for(lambda: execution.events.filter(type=EVENT).first())
    assert handed.data["failure_kind"] == "timeout"


def test_a_handler_that_swallows_its_time_limit_is_still_timed_out(
    celery_backend: CeleryBackend,
) -> None:
    execution = dispatch("diag.sleep", {"seconds": 30, "swallow": True}, trigger_source="api")
    wait_for_status(execution, *FINAL)
    assert execution.status == S.TIMED_OUT
    assert execution.error == "timed out: exceeded its time limit of 3s (returned after it)"
    assert execution.result is None
    ran = (execution.finished_at - execution.started_at).total_seconds()
    assert 2.5 <= ran < 5, ran
    assert "timed_out" in event_types(execution) and "succeeded" not in event_types(execution)
    handed = wait_for(lambda: execution.events.filter(type=EVENT).first())
    assert handed.data["failure_kind"] == "timeout"


def intervals(executions: list[Execution]) -> list[tuple[Any, Any]]:
    return sorted((e.started_at, e.finished_at) for e in executions)


def test_executions_with_the_same_lock_key_never_overlap(celery_backend: CeleryBackend) -> None:
    # Control: without a key, the two worker processes do run them side by side.
    free = [dispatch("diag.sleep", {"seconds": 1}, trigger_source="api") for _ in range(2)]
    locked = [
        dispatch("diag.sleep", {"seconds": 0.8, "lock": "same"}, trigger_source="api")
        for _ in range(3)
    ]
    for execution in free + locked:
        wait_for_status(execution, *FINAL)
        assert execution.status == S.SUCCEEDED, execution.error
    (a_start, a_end), (b_start, b_end) = intervals(free)
    assert b_start < a_end, "the control pair should overlap on a 2-process worker"
    spans = intervals(locked)
    for (_, end), (start, _) in zip(spans, spans[1:], strict=False):
        assert end <= start, f"overlap: {spans}"
    waits = sum(event_types(e).count("lock_wait") for e in locked)
    assert waits >= 1, "at least one of them found the key busy and waited"
    assert not ExecutionLock.objects.exists()


def test_cancelling_a_queued_execution(
    celery_backend: CeleryBackend, celery_worker: CeleryWorker
) -> None:
    execution = dispatch("diag.noop", trigger_source="api", delay_seconds=10)
    wait_for_status(execution, S.QUEUED)
    cancel(execution, by="ops", reason="changed my mind")
    task_id = f"{execution.pk}:{execution.submissions}"
    # Its message is due later: the worker discards it as revoked (or the claim
    # refuses it, if the revoke arrived late).
    wait_for(
        lambda: (
            f"Discarding revoked task: executions.tasks.run_pipeline_task[{task_id}]"
            in celery_worker.log()
            or execution.events.filter(type="delivery_ignored").exists()
        ),
        what="the worker to drop the cancelled execution's message",
    )
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    assert "started" not in event_types(execution)


def test_cancelling_a_running_execution(celery_backend: CeleryBackend) -> None:
    execution = dispatch("diag.sleep", {"seconds": 20, "lock": "c"}, trigger_source="api")
    wait_for_status(execution, S.RUNNING)
    cancel(execution, by="ops", reason="stop")
    stopped = wait_for(lambda: execution.events.filter(type="handler_stopped").first())
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED
    # Stopped by the cancellation, not by its 3 s time limit or the end of its sleep.
    assert stopped.data["outcome"] == S.CANCELLED, stopped.data
    assert not ExecutionLock.objects.exists(), "the lock is released when the handler stops"
    assert EVENT not in event_types(execution)


def test_a_redelivered_message_is_harmless(
    celery_backend: CeleryBackend, celery_worker: CeleryWorker
) -> None:
    execution = dispatch("diag.noop", trigger_source="api")
    wait_for_status(execution, S.SUCCEEDED)
    celery_backend.app.send_task(
        TASK_NAME, args=[str(execution.pk)], task_id=f"{execution.pk}:dup", queue="default"
    )
    ignored = wait_for(lambda: execution.events.filter(type="delivery_ignored").first())
    assert ignored.data == {"status": "succeeded", "reason": "not runnable"}
    assert event_types(execution).count("started") == 1


def test_lanes_route_to_their_queues(celery_backend: CeleryBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli", lane="backfill")
    wait_for_status(execution, *FINAL)
    assert execution.status == S.SUCCEEDED and execution.lane == "backfill"
