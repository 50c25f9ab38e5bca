"""Fenced writes: a run that lost its claim commits nothing and says it was fenced."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection, transaction

from executions import fencing
from executions.backends.stub import StubBackend
from executions.dispatcher import dispatch
from executions.interrupts import RunFenced
from executions.models import Execution, ExecutionStatus
from executions.registry import Pipeline, PipelineParams, registry
from executions.run_context import RunContext
from executions.runner import run_pipeline
from executions.services import record_event
from otc.models import Capture, VenueVolume
from otc.services import compute_capture, ingest_file, normalize_capture, partitions
from tests.executions.helpers import event_types

pytestmark = [pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
WEEK = "2025-12-15"


def _write(ctx: RunContext) -> None:
    with transaction.atomic():
        record_event(ctx.execution, "written", {"run": str(ctx.run_token)})
        fencing.fence()


def superseded(ctx: RunContext) -> dict[str, Any]:
    """As if a redelivery claimed the execution (a new run token) mid-run, then write."""
    Execution.objects.filter(pk=ctx.execution_id).update(run_token=uuid.uuid4())
    _write(ctx)
    return {"written": True}


def cancelled(ctx: RunContext) -> dict[str, Any]:
    Execution.objects.filter(pk=ctx.execution_id).update(status=S.CANCELLED)
    _write(ctx)
    return {"written": True}


def dispatches_after_losing(ctx: RunContext) -> dict[str, Any]:
    Execution.objects.filter(pk=ctx.execution_id).update(status=S.QUEUED, run_token=None)
    dispatch("diag.noop", trigger_source="schedule", parent=ctx.execution)
    return {"dispatched": 1}


def swallows(ctx: RunContext) -> dict[str, Any]:
    """A careless handler that catches even the fence's refusal and returns."""
    Execution.objects.filter(pk=ctx.execution_id).update(run_token=uuid.uuid4())
    try:
        _write(ctx)
    except BaseException:  # noqa: B036 - the point is to swallow it
        pass
    return {"written": "supposedly"}


TEST_PIPELINES = [
    Pipeline("test.superseded", superseded, PipelineParams, "loses its claim, then writes"),
    Pipeline("test.cancelled", cancelled, PipelineParams, "cancelled, then writes"),
    Pipeline("test.dispatcher", dispatches_after_losing, PipelineParams, "reaped, dispatches"),
    Pipeline("test.swallows", swallows, PipelineParams, "swallows the refusal"),
]


@pytest.fixture(autouse=True, scope="module")
def test_pipelines() -> Iterator[None]:
    for spec in TEST_PIPELINES:
        registry.register(spec)
    yield
    for spec in TEST_PIPELINES:
        registry.unregister(spec.name)


def run(pipeline: str, params: dict[str, Any] | None = None) -> Execution:
    execution = dispatch(pipeline, params, trigger_source="cli")
    run_pipeline(execution.pk)
    execution.refresh_from_db()
    return execution


def stale_context(pipeline: str = "diag.noop") -> RunContext:
    """A run context whose execution is now running under another run's token."""
    execution = dispatch(pipeline, trigger_source="cli")
    Execution.objects.filter(pk=execution.pk).update(status=S.RUNNING, run_token=uuid.uuid4())
    execution.refresh_from_db()
    return RunContext(
        execution, registry.get(pipeline), uuid.uuid4(), deadline=time.monotonic() + 60
    )


# --- through the runner ---------------------------------------------------------------


def test_a_run_that_owns_its_execution_commits_each_fenced_step(
    stub_backend: StubBackend,
) -> None:
    execution = run("diag.write", {"rows": 4, "steps": 3})
    assert execution.status == S.SUCCEEDED
    written = execution.events.filter(type="written")
    assert written.count() == 12
    assert set(written.values_list("data__run", flat=True)) == {str(execution.run_token)}
    assert "fenced" not in event_types(execution)


def test_a_run_token_mismatch_rolls_the_write_back_and_records_fenced(
    stub_backend: StubBackend,
) -> None:
    execution = run("test.superseded")
    first_run = execution.events.get(type="started").data["run"]
    # The new run's claim is untouched: still running under its token, no result.
    assert execution.status == S.RUNNING and str(execution.run_token) != first_run
    assert execution.result is None and execution.error == ""
    assert not execution.events.filter(type="written").exists()
    fenced = execution.events.get(type="fenced")
    assert fenced.data["run"] == first_run
    assert fenced.data["error"] == (
        "fenced: the execution is running and no longer this run's; "
        "this run's write was rolled back"
    )
    assert event_types(execution)[-1] == "fenced"


def test_a_cancelled_run_s_write_is_fenced(stub_backend: StubBackend) -> None:
    execution = run("test.cancelled")
    assert execution.status == S.CANCELLED
    assert not execution.events.filter(type="written").exists()
    fenced = execution.events.get(type="fenced")
    assert fenced.data["error"].startswith("fenced: the execution was cancelled;")


def test_a_run_that_lost_its_claim_dispatches_no_children(stub_backend: StubBackend) -> None:
    execution = run("test.dispatcher")
    assert execution.status == S.QUEUED
    assert not Execution.objects.filter(parent=execution).exists()
    assert stub_backend.submitted == [execution.pk], "only its own dispatch was submitted"
    assert execution.events.filter(type="fenced").count() == 1


def test_a_handler_that_swallows_the_refusal_is_still_recorded_fenced(
    stub_backend: StubBackend,
) -> None:
    execution = run("test.swallows")
    assert execution.status == S.RUNNING and execution.result is None
    assert not execution.events.filter(type="written").exists()
    assert execution.events.filter(type="fenced").count() == 1


# --- the fence itself -----------------------------------------------------------------


def test_the_fence_is_a_no_op_outside_a_run(stub_backend: StubBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli")
    with transaction.atomic():
        record_event(execution, "written")
        fencing.fence()
    assert execution.events.filter(type="written").count() == 1


def test_the_fence_belongs_inside_a_transaction(stub_backend: StubBackend) -> None:
    ctx = stale_context()
    with fencing.bind(ctx), pytest.raises(RuntimeError, match="transaction.atomic"):
        fencing.fence()


def test_the_fence_holds_the_execution_row_until_the_commit(stub_backend: StubBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli")
    token = uuid.uuid4()
    Execution.objects.filter(pk=execution.pk).update(status=S.RUNNING, run_token=token)
    ctx = RunContext(execution, registry.get("diag.noop"), token, deadline=time.monotonic() + 60)
    with fencing.bind(ctx), transaction.atomic():
        fencing.fence()
        locked = connection.cursor()
        locked.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
            "WHERE c.relname = %s AND l.pid = pg_backend_pid() AND l.mode = 'RowShareLock'",
            [Execution._meta.db_table],
        )
        assert locked.fetchone()[0] >= 1


# --- OTC services under a run that lost its claim ---------------------------------------


def test_a_stale_ingest_leaves_no_capture(stub_backend: StubBackend, real_otc_file: Path) -> None:
    with fencing.bind(stale_context()), pytest.raises(RunFenced, match="no longer this run's"):
        ingest_file(real_otc_file, tier="OTC", week=WEEK, ats=True)
    assert not Capture.objects.exists() and not VenueVolume.objects.exists()
    assert not partitions.staged_exists(1)  # nothing staged either


def test_a_stale_normalize_and_compute_write_nothing(
    stub_backend: StubBackend, real_otc_file: Path
) -> None:
    capture_id = ingest_file(real_otc_file, tier="OTC", week=WEEK, ats=True).capture_id
    with fencing.bind(stale_context()), pytest.raises(RunFenced):
        normalize_capture(capture_id)
    capture = Capture.objects.get(pk=capture_id)
    assert capture.normalized_at is None and not VenueVolume.objects.exists()

    normalize_capture(capture_id)
    with fencing.bind(stale_context()), pytest.raises(RunFenced):
        compute_capture(capture_id)
    capture.refresh_from_db()
    assert capture.computed_at is None and not capture.quality_reports.exists()
