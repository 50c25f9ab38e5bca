"""The Dispatcher: validation before writing, submission after commit, refusal, cancel."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import transaction
from kombu.exceptions import OperationalError

from executions.backends.stub import StubBackend
from executions.dispatcher import Dispatcher, cancel, dispatch
from executions.models import Execution, ExecutionEvent, ExecutionStatus
from executions.registry import InvalidParams, UnknownPipeline
from executions.services import IllegalTransition, transition
from spine.context import bind
from tests.executions.helpers import event_types

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

S = ExecutionStatus


def nothing_written() -> bool:
    return not Execution.objects.exists() and not ExecutionEvent.objects.exists()


def test_unknown_pipeline_is_refused_before_anything_is_written(stub_backend: StubBackend) -> None:
    with pytest.raises(UnknownPipeline, match="diag.noop"):
        dispatch("no.such.pipeline", trigger_source="api")
    assert nothing_written() and stub_backend.submitted == []


@pytest.mark.parametrize(
    "params, field",
    [
        ({"seconds": "soon"}, "seconds"),
        ({"seconds": -1}, "seconds"),
        ({"seconds": 1, "colour": "red"}, "colour"),
    ],
)
def test_invalid_params_are_refused_before_anything_is_written(
    stub_backend: StubBackend, params: dict[str, Any], field: str
) -> None:
    with pytest.raises(InvalidParams) as info:
        dispatch("diag.sleep", params, trigger_source="api")
    assert field in info.value.errors
    assert nothing_written()


def test_bad_trigger_source_and_lane_are_refused(stub_backend: StubBackend) -> None:
    with pytest.raises(ValueError, match="trigger source"):
        dispatch("diag.noop", trigger_source="carrier-pigeon")
    with pytest.raises(ValueError, match="lane"):
        dispatch("diag.noop", trigger_source="api", lane="express")
    assert nothing_written()


def test_dispatch_records_the_execution_and_submits_after_commit(
    stub_backend: StubBackend, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        with bind(request_id="req-123"):
            execution = dispatch("diag.sleep", {"seconds": 0.5}, trigger_source="api")
        assert stub_backend.submitted == [], "nothing reaches the backend before the commit"
    assert stub_backend.submitted == [execution.pk]
    execution.refresh_from_db()
    assert execution.status == S.QUEUED and execution.submissions == 1
    assert execution.params == {"seconds": 0.5, "lock": "", "swallow": False}, "defaults filled in"
    assert execution.request_id == "req-123"
    assert execution.lane == "default" and execution.attempt == 1 and execution.lock_key == ""
    assert event_types(execution) == ["created", "queued"]
    created = execution.events.get(type="created").data
    assert created["trigger_source"] == "api" and created["params"]["seconds"] == 0.5


def test_a_rolled_back_dispatch_never_reaches_the_backend(
    stub_backend: StubBackend, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        with pytest.raises(RuntimeError), transaction.atomic():
            dispatch("diag.noop", trigger_source="api")
            raise RuntimeError("the caller's transaction fails")
    assert stub_backend.submitted == [] and nothing_written()


def test_lock_key_lane_and_delay(stub_backend: StubBackend) -> None:
    execution = dispatch(
        "diag.sleep", {"lock": "k"}, trigger_source="cli", lane="backfill", delay_seconds=30
    )
    assert execution.lock_key == "diag:sleep:k"
    assert execution.lane == "backfill"
    assert execution.run_after is not None and execution.run_after > execution.created_at


def test_retries_count_attempts_from_their_parent(stub_backend: StubBackend) -> None:
    first = dispatch("diag.fail", trigger_source="api", request_id="r-1")
    retry = dispatch("diag.fail", trigger_source="retry", parent=first)
    assert retry.attempt == 2 and retry.parent == first
    assert retry.request_id == "r-1", "a child keeps its parent's correlation id"
    child = dispatch("diag.noop", trigger_source="schedule", parent=first)
    assert child.attempt == 1
    explicit = dispatch("diag.fail", trigger_source="retry", parent=retry, attempt=7)
    assert explicit.attempt == 7


def test_a_refusing_backend_leaves_the_execution_pending_with_the_reason(
    stub_backend: StubBackend, django_capture_on_commit_callbacks: Any
) -> None:
    stub_backend.fail_with = OperationalError("Error 111 connecting to 127.0.0.1:6390")
    with django_capture_on_commit_callbacks(execute=True):
        execution = dispatch("diag.noop", trigger_source="api")
    execution.refresh_from_db()
    assert execution.status == S.PENDING
    assert event_types(execution) == ["created", "queued", "submit_failed"]
    reason = execution.events.get(type="submit_failed").data
    assert "6390" in reason["error"] and reason["retry"] == "sweeper"


def test_submit_is_a_no_op_for_an_execution_already_handed_over(
    stub_backend: StubBackend, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        execution = dispatch("diag.noop", trigger_source="api")
    stale = Execution.objects.get(pk=execution.pk)
    stale.status, stale.submissions = S.PENDING, 0
    Dispatcher(backend=stub_backend).submit(stale)
    assert stub_backend.submitted == [execution.pk]


def test_an_explicit_backend_is_used(django_capture_on_commit_callbacks: Any, fast: Any) -> None:
    backend = StubBackend()
    with django_capture_on_commit_callbacks(execute=True):
        execution = Dispatcher(backend=backend).dispatch("diag.noop", trigger_source="cli")
    assert backend.submitted == [execution.pk]


def test_cancel_a_queued_execution_withdraws_it(
    stub_backend: StubBackend, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        execution = dispatch("diag.noop", trigger_source="api")
    with django_capture_on_commit_callbacks(execute=True):
        cancelled = cancel(execution, by="ops", reason="not needed")
    assert cancelled.status == S.CANCELLED and cancelled.finished_at is not None
    assert stub_backend.cancelled == [execution.pk]
    assert execution.events.get(type="cancelled").data == {
        "from": "queued",
        "to": "cancelled",
        "by": "ops",
        "reason": "not needed",
    }


def test_cancel_a_pending_execution(
    stub_backend: StubBackend, django_capture_on_commit_callbacks: Any
) -> None:
    stub_backend.fail_with = OperationalError("broker down")
    with django_capture_on_commit_callbacks(execute=True):
        execution = dispatch("diag.noop", trigger_source="api")
    assert execution.status == S.PENDING
    assert cancel(execution).status == S.CANCELLED
    assert stub_backend.cancelled == [], "nothing to withdraw from the backend"


def test_cancel_a_finished_execution_is_refused(stub_backend: StubBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="api")
    transition(execution, S.CANCELLED)
    with pytest.raises(IllegalTransition):
        cancel(execution, by="ops")
