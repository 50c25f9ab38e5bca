"""The sweeper and the reaper, against the stub backend with controlled timestamps."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from executions.backends.stub import StubBackend
from executions.dispatcher import dispatch
from executions.locks import acquire_lock
from executions.models import Execution, ExecutionLock, ExecutionStatus
from executions.recovery import reap_stale_executions, sweep_pending_executions
from executions.services import transition
from spine.time import utc_now
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus


def aged(execution: Execution, seconds: float, **fields: Any) -> Execution:
    """Pretend the execution's timestamps are ``seconds`` old."""
    then = utc_now() - timedelta(seconds=seconds)
    values = {"created_at": then, **fields}
    Execution.objects.filter(pk=execution.pk).update(**values)
    execution.refresh_from_db()
    return execution


# --- sweeper ----------------------------------------------------------------------------


def pending(stub_backend: StubBackend, **kw: Any) -> Execution:
    stub_backend.fail_with = ConnectionError("broker down")
    try:
        execution = dispatch("diag.noop", trigger_source="api", **kw)
    finally:
        stub_backend.fail_with = None
    execution.refresh_from_db()
    assert execution.status == S.PENDING
    return execution


def test_the_sweeper_resubmits_old_pending_executions(stub_backend: StubBackend) -> None:
    old = aged(pending(stub_backend), 5, queued_at=utc_now() - timedelta(seconds=5))
    fresh = pending(stub_backend)
    assert sweep_pending_executions() == 1
    old.refresh_from_db()
    fresh.refresh_from_db()
    assert old.status == S.QUEUED and fresh.status == S.PENDING
    assert stub_backend.submitted == [old.pk]
    assert old.events.filter(type="queued").last().data["reason"] == "sweeper"
    assert sweep_pending_executions() == 0, "nothing twice"


def test_the_sweeper_respects_run_after_and_cancellation(stub_backend: StubBackend) -> None:
    waiting = pending(stub_backend, delay_seconds=600)
    aged(waiting, 5, queued_at=utc_now() - timedelta(seconds=5))
    cancelled = aged(pending(stub_backend), 5)
    transition(cancelled, S.CANCELLED)
    assert sweep_pending_executions() == 0
    assert stub_backend.submitted == []


def test_the_sweeper_republishes_a_queued_execution_whose_message_was_lost(
    stub_backend: StubBackend, settings: Any
) -> None:
    execution = dispatch("diag.noop", trigger_source="api")
    execution.refresh_from_db()
    assert execution.status == S.QUEUED and execution.submissions == 1
    beyond = settings.SPINE_SWEEP_QUEUED_AFTER_SECONDS + 60
    aged(execution, beyond, queued_at=utc_now() - timedelta(seconds=beyond))
    assert sweep_pending_executions() == 1
    execution.refresh_from_db()
    assert execution.submissions == 2 and execution.status == S.QUEUED
    assert execution.events.get(type="resubmitted").data["reason"] == "message presumed lost"
    assert stub_backend.submitted == [execution.pk, execution.pk]


def test_a_refusing_backend_keeps_it_pending_for_the_next_sweep(stub_backend: StubBackend) -> None:
    execution = aged(pending(stub_backend), 5, queued_at=utc_now() - timedelta(seconds=5))
    stub_backend.fail_with = ConnectionError("still down")
    sweep_pending_executions()
    execution.refresh_from_db()
    assert execution.status == S.PENDING
    assert event_types(execution).count("submit_failed") == 2


# --- reaper -----------------------------------------------------------------------------


def running(
    stub_backend: StubBackend,
    pipeline: str = "diag.sleep",
    *,
    silent_for: float,
    started: float | None = None,
    **params: Any,
) -> Execution:
    execution = dispatch(pipeline, params or None, trigger_source="api")
    token = uuid.uuid4()
    transition(execution, S.RUNNING, run_token=token)
    if execution.lock_key:
        acquire_lock(execution.lock_key, execution, token, ttl_seconds=600)
    now = utc_now()
    Execution.objects.filter(pk=execution.pk).update(
        heartbeat_at=now - timedelta(seconds=silent_for),
        started_at=now - timedelta(seconds=started if started is not None else silent_for),
    )
    execution.refresh_from_db()
    return execution


def test_a_silent_run_is_requeued_while_its_policy_allows(stub_backend: StubBackend) -> None:
    execution = running(stub_backend, silent_for=10, lock="k")
    assert ExecutionLock.objects.filter(execution=execution).exists()
    reaped = reap_stale_executions()
    assert [(r.execution_id, r.action) for r in reaped] == [(execution.pk, "requeued")]
    execution.refresh_from_db()
    assert execution.status == S.QUEUED and execution.redeliveries == 1
    assert execution.run_token is None and execution.submissions == 2
    assert not ExecutionLock.objects.exists(), "the lost run's lock is released"
    assert stub_backend.submitted[-1] == execution.pk
    assert execution.events.get(type="requeued").data["reason"] == "worker lost"


def test_a_silent_run_fails_when_the_policy_is_spent(stub_backend: StubBackend) -> None:
    execution = running(stub_backend, silent_for=10)
    Execution.objects.filter(pk=execution.pk).update(redeliveries=1)
    assert [r.action for r in reap_stale_executions()] == ["failed"]
    execution.refresh_from_db()
    assert execution.status == S.FAILED
    assert execution.error.startswith("worker lost: no heartbeat since")
    assert "requeued 1 of 1" in execution.error
    assert execution.events.get(type=EVENT).data["failure_kind"] == "worker_lost"


def test_a_pipeline_without_retries_fails_at_once(stub_backend: StubBackend) -> None:
    execution = running(stub_backend, "diag.noop", silent_for=10)
    assert [r.action for r in reap_stale_executions()] == ["failed"]
    assert Execution.objects.get(pk=execution.pk).status == S.FAILED


def test_a_run_that_was_alive_at_its_limit_is_timed_out(stub_backend: StubBackend) -> None:
    # diag.sleep's limit is 3s: it beat 10s ago, 2.5s after starting (within a beat of it).
    execution = running(stub_backend, silent_for=10, started=12.5)
    assert [r.action for r in reap_stale_executions()] == ["timed_out"]
    execution.refresh_from_db()
    assert execution.status == S.TIMED_OUT and "time limit of 3s" in execution.error
    assert execution.events.get(type=EVENT).data["failure_kind"] == "timeout"


def test_live_runs_are_left_alone(stub_backend: StubBackend) -> None:
    execution = running(stub_backend, silent_for=0.5)
    assert reap_stale_executions() == []
    assert Execution.objects.get(pk=execution.pk).status == S.RUNNING


def test_a_run_of_an_unregistered_pipeline_fails(stub_backend: StubBackend) -> None:
    execution = running(stub_backend, silent_for=10)
    Execution.objects.filter(pk=execution.pk).update(pipeline="gone.away")
    assert [r.action for r in reap_stale_executions()] == ["failed"]
