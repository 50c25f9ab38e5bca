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
from executions.pipelines import NoopParams
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


def test_a_queued_execution_is_presumed_lost_minutes_after_it_was_due(
    stub_backend: StubBackend, settings: Any
) -> None:
    settings.SPINE_SWEEP_LOST_AFTER_SECONDS = 180
    waiting = dispatch("diag.noop", trigger_source="api")
    lost = dispatch("diag.noop", trigger_source="api")
    aged(waiting, 170, queued_at=utc_now() - timedelta(seconds=170))
    aged(lost, 190, queued_at=utc_now() - timedelta(seconds=190))
    assert sweep_pending_executions() == 1
    lost.refresh_from_db()
    assert lost.submissions == 2 and lost.status == S.QUEUED
    resubmitted = lost.events.get(type="resubmitted").data
    assert resubmitted["reason"] == "message presumed lost" and resubmitted["waited_seconds"] >= 190
    assert stub_backend.submitted == [waiting.pk, lost.pk, lost.pk]
    # A second hand-off waits twice as long before it is presumed lost too.
    assert sweep_pending_executions() == 0
    aged(lost, 500, queued_at=utc_now() - timedelta(seconds=500))
    assert sweep_pending_executions() == 1
    assert Execution.objects.get(pk=lost.pk).submissions == 3


def test_the_lost_message_wait_doubles_per_hand_off_up_to_the_broker_window(
    settings: Any,
) -> None:
    from executions.recovery import presumed_lost_after

    settings.SPINE_SWEEP_LOST_AFTER_SECONDS = 180
    assert [presumed_lost_after(n).total_seconds() for n in (1, 2, 3)] == [180, 360, 720]
    window = settings.SPINE_SWEEP_QUEUED_AFTER_SECONDS
    assert presumed_lost_after(40).total_seconds() == window


def test_a_lock_wait_is_presumed_lost_counting_from_when_it_was_due(
    stub_backend: StubBackend, settings: Any
) -> None:
    settings.SPINE_SWEEP_LOST_AFTER_SECONDS = 180
    execution = dispatch("diag.noop", trigger_source="api")
    due = utc_now() - timedelta(seconds=100)
    aged(execution, 1000, queued_at=utc_now() - timedelta(seconds=1000), run_after=due)
    assert sweep_pending_executions() == 0, "due only 100s ago"
    Execution.objects.filter(pk=execution.pk).update(run_after=utc_now() - timedelta(seconds=200))
    assert sweep_pending_executions() == 1


def test_the_reaper_can_be_limited_to_lanes(stub_backend: StubBackend) -> None:
    default = running(stub_backend, silent_for=10)
    elsewhere = running(stub_backend, silent_for=10)
    Execution.objects.filter(pk=elsewhere.pk).update(lane="backfill")
    reaped = reap_stale_executions(lanes=["default", "maintenance"])
    assert [r.execution_id for r in reaped] == [default.pk]
    assert Execution.objects.get(pk=elsewhere.pk).status == S.RUNNING


@pytest.fixture
def rerunnable() -> Any:
    """A pipeline that allows two requeues and no automatic retries."""
    from executions.pipelines import noop
    from executions.registry import Pipeline, registry

    registry.register(
        Pipeline(
            name="test.rerunnable",
            handler=noop,
            params=NoopParams,
            description="rerunnable",
            max_requeues=2,
        )
    )
    yield "test.rerunnable"
    registry.unregister("test.rerunnable")


def test_requeues_follow_the_pipeline_s_declared_cap_not_its_retries(
    stub_backend: StubBackend, rerunnable: str
) -> None:
    execution = running(stub_backend, rerunnable, silent_for=10)
    for expected in (1, 2):
        assert [r.action for r in reap_stale_executions()] == ["requeued"]
        execution.refresh_from_db()
        assert execution.redeliveries == expected
        transition(execution, S.RUNNING, run_token=uuid.uuid4())
        Execution.objects.filter(pk=execution.pk).update(
            heartbeat_at=utc_now() - timedelta(seconds=10)
        )
    assert [r.action for r in reap_stale_executions()] == ["failed"]
    execution.refresh_from_db()
    assert "requeued 2 of 2 allowed times" in execution.error


def test_which_pipelines_may_be_requeued_after_a_lost_worker() -> None:
    from executions.registry import RERUN_SAFE_REQUEUES, Pipeline, PipelineRegistry, registry

    for spec in registry:
        if spec.name.startswith(("otc.", "ops.")):
            assert spec.max_requeues == RERUN_SAFE_REQUEUES == 2, spec.name
    assert registry.get("diag.noop").max_requeues == 0, "undeclared: not safe to rerun"
    assert registry.get("diag.sleep").max_requeues == 1
    bad = Pipeline(
        name="x.bad", handler=lambda ctx: None, params=NoopParams, description="", max_requeues=-1
    )
    with pytest.raises(ValueError, match="max_requeues must not be negative"):
        PipelineRegistry().register(bad)
