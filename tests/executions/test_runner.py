"""The runner, called directly (as every backend ends up calling it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from celery.exceptions import SoftTimeLimitExceeded

from executions.backends.stub import StubBackend
from executions.dispatcher import cancel, dispatch
from executions.locks import acquire_lock
from executions.models import Execution, ExecutionLock, ExecutionStatus
from executions.registry import Pipeline, PipelineParams, registry
from executions.run_context import RunContext
from executions.runner import run_pipeline
from executions.services import transition
from spine.context import bind, get_execution_id, get_request_id
from spine.time import utc_now
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types, wait_for, wait_for_status

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus


# --- pipelines that only this module needs (registered in the test process only) -------


def soft_limit(ctx: RunContext) -> None:
    raise SoftTimeLimitExceeded()


def returns_a_list(ctx: RunContext) -> list[int]:
    return [1, 2]


def spin(ctx: RunContext) -> None:
    """Busy work with no checkpoints: only an interrupt can stop it."""
    while True:
        sum(range(1000))


def stubborn(ctx: RunContext) -> dict[str, Any]:
    """Swallows its interrupt and keeps going past the grace period."""
    end = time.monotonic() + 6
    while time.monotonic() < end:
        try:
            time.sleep(0.05)
        except BaseException:  # noqa: B036 - the point is to ignore the time limit
            pass
    return {"finished": "late"}


def usurped(ctx: RunContext) -> dict[str, Any]:
    """Behaves as if the reaper gave the execution to another worker mid-run."""
    Execution.objects.filter(pk=ctx.execution_id).update(status=S.QUEUED, run_token=None)
    return {"too": "late"}


def context_probe(ctx: RunContext) -> dict[str, Any]:
    ctx.event("progress", step=1)
    ctx.heartbeat()
    child = dispatch("diag.noop", trigger_source="schedule", parent=ctx.execution)
    return {
        "execution_id": get_execution_id(),
        "request_id": get_request_id(),
        "params": ctx.params,
        "child": str(child.pk),
    }


TEST_PIPELINES = [
    Pipeline("test.soft_limit", soft_limit, PipelineParams, "soft limit", timeout_seconds=5),
    Pipeline("test.list", returns_a_list, PipelineParams, "bad result"),
    Pipeline("test.spin", spin, PipelineParams, "busy loop", timeout_seconds=4),
    Pipeline("test.stubborn", stubborn, PipelineParams, "ignores its limit", timeout_seconds=1),
    Pipeline("test.usurped", usurped, PipelineParams, "loses its execution"),
    Pipeline("test.probe", context_probe, PipelineParams, "context"),
    Pipeline(
        "test.exclusive",
        soft_limit,
        PipelineParams,
        "fails fast on a busy key",
        lock_key="exclusive",
        lock_policy="fail",
    ),
]


@pytest.fixture(autouse=True, scope="module")
def test_pipelines() -> Iterator[None]:
    for spec in TEST_PIPELINES:
        registry.register(spec)
    yield
    for spec in TEST_PIPELINES:
        registry.unregister(spec.name)


def queued(pipeline: str, params: dict[str, Any] | None = None, **kw: Any) -> Execution:
    """A queued execution, as a backend would receive it."""
    execution = dispatch(pipeline, params, trigger_source="cli", **kw)
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    return execution


def reload(execution: Execution) -> Execution:
    execution.refresh_from_db()
    return execution


# --- outcomes ---------------------------------------------------------------------------


def test_success_records_the_result_and_events_in_order(stub_backend: StubBackend) -> None:
    execution = queued("diag.noop")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.SUCCEEDED and execution.result == {"ok": True}
    assert execution.run_token and execution.started_at <= execution.finished_at
    assert event_types(execution) == ["created", "queued", "started", "succeeded"]
    started = execution.events.get(type="started").data
    assert started["pid"] > 0 and started["attempt"] == 1 and started["submission"] == 1
    assert started["run"] == str(execution.run_token) and started["lock_key"] is None
    assert execution.events.get(type="succeeded").data["duration_seconds"] >= 0


def test_failure_records_error_and_traceback_and_hands_off(stub_backend: StubBackend) -> None:
    execution = queued("diag.fail", {"message": "disk on fire"})
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.FAILED
    assert execution.error == "RuntimeError: disk on fire"
    assert "Traceback" in execution.traceback and "def fail" not in execution.error
    assert 'raise RuntimeError(ctx.params["message"])' in execution.traceback
    assert execution.events.get(type=EVENT).data == {"failure_kind": "error", "status": "failed"}


def test_the_time_limit_stops_the_handler(stub_backend: StubBackend) -> None:
    execution = queued("diag.sleep", {"seconds": 20})
    started = time.monotonic()
    run_pipeline(execution.pk)
    elapsed = time.monotonic() - started
    reload(execution)
    assert execution.status == S.TIMED_OUT
    assert execution.error == "timed out: exceeded its time limit of 3s"
    assert 3 <= elapsed < 20, "stopped at its limit, not after its sleep"
    assert execution.events.get(type="timed_out").data["limit_seconds"] == 3
    assert execution.events.get(type=EVENT).data["failure_kind"] == "timeout"


def test_a_busy_loop_is_interrupted_at_its_limit(stub_backend: StubBackend) -> None:
    execution = queued("test.spin")
    run_pipeline(execution.pk)
    assert reload(execution).status == S.TIMED_OUT


def test_celery_soft_limit_is_a_timeout(stub_backend: StubBackend) -> None:
    execution = queued("test.soft_limit")
    run_pipeline(execution.pk, enforce_timeout=False)
    reload(execution)
    assert execution.status == S.TIMED_OUT and "5s" in execution.error


def test_a_handler_that_ignores_its_limit_is_recorded_timed_out_anyway(
    stub_backend: StubBackend,
) -> None:
    execution = queued("test.stubborn")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.TIMED_OUT and "did not stop within 1s" in execution.error
    assert execution.result is None, "the late result does not overwrite the ledger"
    types = event_types(execution)
    assert types.index("timed_out") < types.index("late_result")
    assert types.count(EVENT) == 1


def test_a_result_that_is_not_a_dict_fails(stub_backend: StubBackend) -> None:
    execution = queued("test.list")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.FAILED and "expected a dict" in execution.error


def test_a_run_that_lost_its_execution_does_not_overwrite_it(stub_backend: StubBackend) -> None:
    execution = queued("test.usurped")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.QUEUED and execution.result is None
    assert event_types(execution)[-1] == "late_result"


def test_context_ids_progress_events_and_children(stub_backend: StubBackend) -> None:
    with bind(request_id="req-outer"):
        execution = queued("test.probe")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.SUCCEEDED, execution.error
    assert execution.result["execution_id"] == str(execution.pk)
    assert execution.result["request_id"] == "req-outer"
    assert event_types(execution) == ["created", "queued", "started", "progress", "succeeded"]
    child = Execution.objects.get(pk=execution.result["child"])
    assert child.parent_id == execution.pk and child.request_id == "req-outer"
    assert child.trigger_source == "schedule" and child.status == S.QUEUED


# --- idempotence ------------------------------------------------------------------------


@pytest.mark.parametrize("status", [S.SUCCEEDED, S.FAILED, S.CANCELLED, S.TIMED_OUT, S.RUNNING])
def test_a_delivery_for_an_execution_that_is_not_runnable_only_notes_it(
    stub_backend: StubBackend, status: str
) -> None:
    execution = queued("diag.noop")
    Execution.objects.filter(pk=execution.pk).update(status=status)
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == status and execution.started_at is None
    ignored = execution.events.get(type="delivery_ignored").data
    assert ignored == {"status": status, "reason": "not runnable"}


def test_a_second_delivery_after_success_changes_nothing(stub_backend: StubBackend) -> None:
    execution = queued("diag.noop")
    run_pipeline(execution.pk)
    run_pipeline(str(execution.pk))
    assert event_types(execution).count("started") == 1
    assert event_types(execution)[-1] == "delivery_ignored"


def test_two_deliveries_at_once_run_it_once(stub_backend: StubBackend) -> None:
    execution = queued("diag.sleep", {"seconds": 0.5})
    barrier = threading.Barrier(2)

    def deliver() -> None:
        from django.db import connection

        try:
            barrier.wait()
            run_pipeline(execution.pk)
        finally:
            connection.close()

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert reload(execution).status == S.SUCCEEDED
    types = event_types(execution)
    assert types.count("started") == 1 and types.count("delivery_ignored") == 1


def test_unknown_ids_are_dropped(stub_backend: StubBackend) -> None:
    run_pipeline("not-a-uuid")
    run_pipeline("3f0c1e9e-0000-4000-8000-000000000000")


def test_a_pending_execution_delivered_anyway_runs(stub_backend: StubBackend) -> None:
    stub_backend.fail_with = ConnectionError("broker timed out after sending")
    execution = dispatch("diag.noop", trigger_source="api")
    assert reload(execution).status == S.PENDING
    run_pipeline(execution.pk)
    assert reload(execution).status == S.SUCCEEDED


def test_an_early_delivery_waits_for_run_after(stub_backend: StubBackend) -> None:
    stub_backend.fail_with = ConnectionError("down")
    execution = dispatch("diag.noop", trigger_source="api", delay_seconds=60)
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.PENDING
    assert execution.events.get(type="delivery_ignored").data["reason"] == "early"


def test_a_pipeline_no_longer_registered_fails(stub_backend: StubBackend) -> None:
    execution = queued("diag.noop")
    Execution.objects.filter(pk=execution.pk).update(pipeline="gone.away")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.FAILED and "unknown pipeline 'gone.away'" in execution.error
    assert execution.events.get(type=EVENT).data["failure_kind"] == "error"


# --- locks ------------------------------------------------------------------------------


def hold(key: str, *, for_seconds: float = 60) -> Execution:
    holder = queued("diag.sleep", {"lock": "holder"})
    assert acquire_lock(key, holder, holder.pk, ttl_seconds=for_seconds).acquired
    return holder


def test_a_busy_key_makes_the_execution_wait_and_come_back(stub_backend: StubBackend) -> None:
    holder = hold("diag:sleep:k")
    execution = queued("diag.sleep", {"seconds": 0, "lock": "k"})
    before = utc_now()
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.QUEUED and execution.started_at is None
    assert execution.submissions == 2 and execution.run_after > before
    assert event_types(execution)[-2:] == ["lock_wait", "resubmitted"]
    wait = execution.events.get(type="lock_wait").data
    assert wait["locked_by"] == str(holder.pk) and wait["key"] == "diag:sleep:k"
    assert stub_backend.submitted.count(execution.pk) == 2
    ExecutionLock.objects.all().delete()
    Execution.objects.filter(pk=execution.pk).update(run_after=None)
    run_pipeline(execution.pk)
    assert reload(execution).status == S.SUCCEEDED
    assert not ExecutionLock.objects.exists(), "released after the run"


def test_a_busy_key_fails_clearly_under_the_fail_policy(stub_backend: StubBackend) -> None:
    holder = hold("exclusive")
    execution = queued("test.exclusive")
    run_pipeline(execution.pk)
    reload(execution)
    assert execution.status == S.FAILED
    assert execution.error == f"locked by {holder.pk} (lock key exclusive)"
    assert execution.events.get(type=EVENT).data["failure_kind"] == "lock"
    assert ExecutionLock.objects.get().execution_id == holder.pk, "the holder keeps it"


def test_an_expired_lock_is_taken_over(stub_backend: StubBackend) -> None:
    holder = hold("diag:sleep:k", for_seconds=-1)
    execution = queued("diag.sleep", {"seconds": 0, "lock": "k"})
    run_pipeline(execution.pk)
    assert reload(execution).status == S.SUCCEEDED
    taken = execution.events.get(type="lock_taken_over").data
    assert taken["expired_holder"] == str(holder.pk)


def test_the_lock_is_released_when_the_handler_fails(stub_backend: StubBackend) -> None:
    execution = queued("diag.sleep", {"seconds": 20, "lock": "k"})
    run_pipeline(execution.pk)
    assert reload(execution).status == S.TIMED_OUT
    assert not ExecutionLock.objects.exists()


# --- cancellation -----------------------------------------------------------------------


def cancel_when_running(execution: Execution) -> threading.Thread:
    def worker() -> None:
        try:
            wait_for_status(execution, S.RUNNING)
            cancel(Execution.objects.get(pk=execution.pk), by="test", reason="stop")
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=worker)
    thread.start()
    return thread


def test_cancelling_a_running_execution_stops_its_handler(stub_backend: StubBackend) -> None:
    execution = queued("diag.sleep", {"seconds": 20, "lock": "k"})
    thread = cancel_when_running(execution)
    started = time.monotonic()
    run_pipeline(execution.pk)
    thread.join()
    reload(execution)
    assert time.monotonic() - started < 20, "stopped when cancelled, not after its sleep"
    assert execution.status == S.CANCELLED
    types = event_types(execution)
    assert types.index("cancelled") < types.index("handler_stopped")
    assert "cancelled" in execution.events.get(type="handler_stopped").data["error"]
    assert not ExecutionLock.objects.exists()
    assert EVENT not in types, "a cancellation is not a failure"


def test_cancelling_a_handler_without_checkpoints_interrupts_it(stub_backend: StubBackend) -> None:
    execution = queued("test.spin")
    Execution.objects.filter(pk=execution.pk)
    thread = cancel_when_running(execution)
    run_pipeline(execution.pk)
    thread.join()
    assert reload(execution).status == S.CANCELLED
    assert "handler_stopped" in event_types(execution)


def test_heartbeats_are_stamped_while_running(stub_backend: StubBackend) -> None:
    execution = queued("diag.sleep", {"seconds": 2.5})
    beats: list[Any] = []

    def watch() -> None:
        try:
            wait_for_status(execution, S.RUNNING)
            first = Execution.objects.get(pk=execution.pk).heartbeat_at
            beats.append(
                wait_for(
                    lambda: (
                        Execution.objects.get(pk=execution.pk).heartbeat_at > first
                        and Execution.objects.get(pk=execution.pk).heartbeat_at
                    ),
                    timeout=30,
                )
            )
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=watch)
    thread.start()
    run_pipeline(execution.pk)
    thread.join()
    assert beats and reload(execution).status == S.SUCCEEDED
    assert execution.heartbeat_at - execution.started_at >= timedelta(seconds=1)


def test_transition_history_is_consistent(stub_backend: StubBackend) -> None:
    execution = queued("diag.noop")
    run_pipeline(execution.pk)
    moves = [
        (e.data["from"], e.data["to"]) for e in execution.events.order_by("id") if "from" in e.data
    ]
    assert moves == [("pending", "queued"), ("queued", "running"), ("running", "succeeded")]
    with pytest.raises(Exception):  # noqa: B017 - any IllegalTransition subtype
        transition(execution, S.RUNNING)
