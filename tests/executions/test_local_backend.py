"""The embedded default: the same scenarios on the in-process backend, no broker.

These run on PostgreSQL with the rest of the suite and again on SQLite without Redis
(the ``embedded`` slice of the test command).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection

from executions.backends.local import LocalBackend
from executions.dispatcher import cancel, dispatch
from executions.models import Execution, ExecutionLock, ExecutionStatus
from executions.recovery import reap_stale_executions, sweep_pending_executions
from executions.services import transition
from spine.time import utc_now
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types, wait_for_status

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus


def test_dispatch_runs_it_before_returning(local_backend: LocalBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli")
    assert execution.status == S.SUCCEEDED and execution.result == {"ok": True}
    assert event_types(execution) == ["created", "queued", "started", "succeeded"]


def test_failure_with_traceback(local_backend: LocalBackend) -> None:
    execution = dispatch("diag.fail", {"message": "bad file"}, trigger_source="cli")
    assert execution.status == S.FAILED and execution.error == "RuntimeError: bad file"
    assert "Traceback" in execution.traceback
    assert execution.events.get(type=EVENT).data["failure_kind"] == "error"


def test_time_limit(local_backend: LocalBackend) -> None:
    started = time.monotonic()
    execution = dispatch("diag.sleep", {"seconds": 30}, trigger_source="cli")
    assert execution.status == S.TIMED_OUT and "time limit of 3s" in execution.error
    assert 3 <= time.monotonic() - started < 30, "stopped at its limit, not after its sleep"


def in_thread(target: Any, *args: Any) -> threading.Thread:
    def run() -> None:
        try:
            target(*args)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_same_lock_key_never_overlaps(local_backend: LocalBackend) -> None:
    ids: list[Any] = []

    def submit() -> None:
        ids.append(
            dispatch("diag.sleep", {"seconds": 0.6, "lock": "same"}, trigger_source="cli").pk
        )

    threads = [in_thread(submit) for _ in range(2)]
    for thread in threads:
        thread.join()
    assert local_backend.wait_idle(timeout=120)
    runs = [Execution.objects.get(pk=pk) for pk in ids]
    assert [r.status for r in runs] == [S.SUCCEEDED, S.SUCCEEDED], [r.error for r in runs]
    (_, first_end), (second_start, _) = sorted((r.started_at, r.finished_at) for r in runs)
    assert first_end <= second_start
    assert sum(event_types(r).count("lock_wait") for r in runs) >= 1
    assert not ExecutionLock.objects.exists()


def test_cancel_a_queued_execution(local_backend: LocalBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli", delay_seconds=5)
    assert execution.status == S.QUEUED, "it waits on a timer"
    cancel(execution, by="ops")
    assert local_backend.wait_idle(timeout=1), "cancelling withdrew its timer"
    execution.refresh_from_db()
    assert execution.status == S.CANCELLED and "started" not in event_types(execution)


def test_a_delayed_execution_runs_on_its_timer(local_backend: LocalBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli", delay_seconds=0.3)
    assert local_backend.wait_idle(timeout=120)
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED
    assert execution.started_at >= execution.created_at + timedelta(seconds=0.3)


def test_cancel_a_running_execution(local_backend: LocalBackend) -> None:
    result: list[Execution] = []
    thread = in_thread(
        lambda: result.append(dispatch("diag.sleep", {"seconds": 20}, trigger_source="cli"))
    )
    running = wait_for_status(_latest(), S.RUNNING)
    cancel(running, by="ops", reason="enough")
    thread.join(timeout=120)
    assert not thread.is_alive()
    running.refresh_from_db()
    assert running.status == S.CANCELLED and "handler_stopped" in event_types(running)


def _latest() -> Execution:
    from tests.executions.helpers import wait_for

    return wait_for(lambda: Execution.objects.order_by("-created_at").first())


def test_a_run_whose_process_died_is_reaped_and_rerun(local_backend: LocalBackend) -> None:
    execution = dispatch("diag.sleep", {"seconds": 0}, trigger_source="cli", delay_seconds=60)
    local_backend.cancel(execution)  # the process "dies": its timer is gone
    transition(execution, S.RUNNING, run_token=execution.pk)
    stale = utc_now() - timedelta(seconds=10)
    Execution.objects.filter(pk=execution.pk).update(heartbeat_at=stale, started_at=stale)
    reaped = reap_stale_executions()
    assert [r.action for r in reaped] == ["requeued"]
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED, "requeued and run in-process"
    assert execution.redeliveries == 1
    assert event_types(execution)[-4:] == ["requeued", "started", "sleeping", "succeeded"]


def test_the_sweeper_runs_what_was_left_pending(local_backend: LocalBackend) -> None:
    local_backend_submit = local_backend.submit

    def refuse(execution: Execution) -> None:
        raise RuntimeError("process stopped before the hand-off")

    local_backend.submit = refuse  # type: ignore[method-assign]
    try:
        execution = dispatch("diag.noop", trigger_source="cli")
    finally:
        local_backend.submit = local_backend_submit  # type: ignore[method-assign]
    assert execution.status == S.PENDING
    Execution.objects.filter(pk=execution.pk).update(
        created_at=utc_now() - timedelta(seconds=5), queued_at=utc_now() - timedelta(seconds=5)
    )
    assert sweep_pending_executions() == 1
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED


def test_the_sweeper_runs_a_delayed_execution_whose_timer_died_with_its_process(
    local_backend: LocalBackend, settings: Any
) -> None:
    execution = dispatch("diag.noop", trigger_source="cli", delay_seconds=60)
    local_backend.cancel(execution)  # the process "dies": its timer is gone
    due = utc_now() - timedelta(seconds=settings.SPINE_SWEEP_AFTER_SECONDS - 1)
    Execution.objects.filter(pk=execution.pk).update(run_after=due, queued_at=due)
    assert sweep_pending_executions() == 0, "just due: a live timer may still fire"
    overdue = utc_now() - timedelta(seconds=settings.SPINE_SWEEP_AFTER_SECONDS + 1)
    Execution.objects.filter(pk=execution.pk).update(run_after=overdue, queued_at=overdue)
    assert sweep_pending_executions() == 1
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED, "republished and run in-process"
    resubmitted = execution.events.get(type="resubmitted")
    assert resubmitted.data["reason"] == "message presumed lost"


def test_children_dispatched_by_a_handler_run_in_process_too(local_backend: LocalBackend) -> None:
    from executions.registry import Pipeline, PipelineParams, registry

    def parent(ctx: Any) -> dict[str, Any]:
        child = dispatch("diag.noop", trigger_source="schedule", parent=ctx.execution)
        return {"child": str(child.pk), "child_status": child.status}

    registry.register(Pipeline("test.parent", parent, PipelineParams, "parent"))
    try:
        execution = dispatch("test.parent", trigger_source="cli")
    finally:
        registry.unregister("test.parent")
    assert execution.status == S.SUCCEEDED
    assert execution.result["child_status"] == S.SUCCEEDED
    assert Execution.objects.get(pk=execution.result["child"]).parent_id == execution.pk
