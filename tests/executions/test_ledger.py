"""The ledger writes: the status machine, its events, and the failure hand-off seam."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.db import transaction

from executions.dispatcher import dispatch
from executions.models import ALLOWED_TRANSITIONS, Execution, ExecutionEvent, ExecutionStatus
from executions.services import (
    IllegalTransition,
    StaleExecution,
    hand_off_failure,
    record_event,
    transition,
)
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

S = ExecutionStatus


@pytest.fixture
def execution(stub_backend: Any) -> Execution:
    return dispatch("diag.noop", trigger_source="cli")


def test_transition_updates_status_timestamps_and_appends_an_event(execution: Execution) -> None:
    assert execution.status == S.QUEUED and execution.queued_at is not None
    running = transition(execution, S.RUNNING, event_type="started", run_token=uuid.uuid4())
    assert running.started_at and running.heartbeat_at and running.finished_at is None
    assert execution.status == S.RUNNING, "the caller's instance is updated too"
    done = transition(execution, S.SUCCEEDED, result={"n": 1})
    assert done.finished_at >= done.started_at
    execution.refresh_from_db()
    assert execution.result == {"n": 1}
    assert event_types(execution) == ["created", "queued", "started", "succeeded"]
    last = execution.events.order_by("-id").first()
    assert last.data == {"from": "running", "to": "succeeded"}


@pytest.mark.parametrize(
    "start, target",
    [
        (from_status, to_status)
        for from_status in S.values
        for to_status in S.values
        if to_status not in ALLOWED_TRANSITIONS[from_status]
    ],
)
def test_illegal_transitions_raise_and_write_nothing(
    execution: Execution, start: str, target: str
) -> None:
    Execution.objects.filter(pk=execution.pk).update(status=start)
    before = ExecutionEvent.objects.filter(execution=execution).count()
    with pytest.raises(IllegalTransition) as info:
        transition(execution, target)
    assert (info.value.from_status, info.value.to_status) == (start, target)
    execution.refresh_from_db()
    assert execution.status == start
    assert ExecutionEvent.objects.filter(execution=execution).count() == before


def test_status_and_event_commit_or_roll_back_together(execution: Execution) -> None:
    with pytest.raises(RuntimeError), transaction.atomic():
        transition(execution, S.RUNNING)
        raise RuntimeError("abort")
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    assert event_types(execution) == ["created", "queued"]


def test_expect_guards_against_a_row_that_changed(execution: Execution) -> None:
    token = uuid.uuid4()
    transition(execution, S.RUNNING, run_token=token)
    with pytest.raises(StaleExecution):
        transition(execution, S.SUCCEEDED, expect={"run_token": uuid.uuid4()})
    transition(execution, S.SUCCEEDED, expect={"run_token": token})


def test_unknown_fields_are_refused(execution: Execution) -> None:
    from django.core.exceptions import FieldDoesNotExist

    with pytest.raises(FieldDoesNotExist):
        transition(execution, S.RUNNING, no_such_field=1)


def test_record_event_appends_without_touching_the_status(execution: Execution) -> None:
    event = record_event(execution, "note", {"k": "v"})
    assert event.data == {"k": "v"} and event.timestamp.tzinfo is not None
    execution.refresh_from_db()
    assert execution.status == S.QUEUED
    with pytest.raises(ValueError, match="append-only"):
        event.save()


# --- the failure hand-off seam ----------------------------------------------------------

calls: list[tuple[Execution, str]] = []


def remember(execution: Execution, *, failure_kind: str) -> None:
    calls.append((execution, failure_kind))


@pytest.mark.parametrize("kind", ["error", "timeout", "lock", "worker_lost"])
def test_hand_off_calls_the_configured_handler(
    execution: Execution, settings: Any, kind: str
) -> None:
    settings.SPINE_FAILURE_HANDLER = f"{__name__}.remember"
    calls.clear()
    hand_off_failure(execution, kind)
    assert calls == [(execution, kind)]


def test_hand_off_defaults_to_the_dead_letter_queue() -> None:
    from spine.config import load_config

    assert load_config({}).failure_handler == "dlq.services.park"
    assert load_config({"SPINE_FAILURE_HANDLER": "a.b"}).failure_handler == "a.b"


def test_hand_off_rejects_unknown_kinds(execution: Execution) -> None:
    with pytest.raises(ValueError, match="failure_kind"):
        hand_off_failure(execution, "oops")


def test_an_unimportable_handler_is_logged_and_noted_not_raised(
    execution: Execution, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SPINE_FAILURE_HANDLER = "no_such_app.services.park"
    with caplog.at_level(logging.ERROR, logger="executions.services"):
        hand_off_failure(execution, "error")
    assert any("cannot be imported" in r.getMessage() for r in caplog.records)
    assert any(r.exc_info for r in caplog.records), "the ImportError is logged with its trace"
    note = execution.events.get(type="failure_handoff_failed")
    assert note.data["handler"] == "no_such_app.services.park"
    assert "ModuleNotFoundError" in note.data["error"]


def test_a_raising_handler_is_logged_and_noted_not_raised(
    execution: Execution, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    settings.SPINE_FAILURE_HANDLER = "tests.executions.fakes.explode"
    with caplog.at_level(logging.ERROR, logger="executions.services"):
        hand_off_failure(execution, "timeout")
    assert (
        "the failure handler is broken"
        in execution.events.get(type="failure_handoff_failed").data["error"]
    )


def test_the_fake_handler_notes_the_hand_off(execution: Execution, fast: Any) -> None:
    hand_off_failure(execution, "lock")
    assert execution.events.get(type=EVENT).data["failure_kind"] == "lock"
