"""Stored and logged errors are bounded where they are written: the row, its events, the log."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from executions.backends.stub import StubBackend
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from executions.registry import Pipeline, PipelineParams, registry
from executions.run_context import RunContext
from executions.runner import run_pipeline
from executions.services import record_event, record_events, transition
from spine.text import STORED_TEXT_CHARS, bounded

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

HUGE = 10 * (1 << 20)
TAIL = "\x00the end of the message"


def shouts(ctx: RunContext) -> None:
    raise ValueError("E" * HUGE + TAIL)


@pytest.fixture(autouse=True, scope="module")
def huge_error_pipeline() -> Iterator[None]:
    registry.register(Pipeline("test.shouts", shouts, PipelineParams, "a 10 MB error"))
    yield
    registry.unregister("test.shouts")


def assert_bounded(text: str) -> None:
    assert len(text) <= STORED_TEXT_CHARS
    assert "\x00" not in text
    assert "… [truncated " in text


def test_a_10_mb_error_is_stored_and_logged_bounded(
    stub_backend: StubBackend, caplog: pytest.LogCaptureFixture
) -> None:
    execution = dispatch("test.shouts", trigger_source="cli")
    with caplog.at_level(logging.INFO, logger="executions.runner"):
        run_pipeline(execution.pk)
    execution.refresh_from_db()

    assert execution.status == ExecutionStatus.FAILED
    assert_bounded(execution.error)
    assert execution.error.startswith("ValueError: EEEE")
    assert execution.error.endswith("\\x00the end of the message")
    assert_bounded(execution.traceback)
    assert execution.traceback.startswith("Traceback (most recent call last):")
    assert execution.traceback.rstrip().endswith("the end of the message")
    failed = execution.events.get(type="failed")
    assert failed.data["error"] == execution.error
    logged = [r.getMessage() for r in caplog.records if "execution failed" in r.getMessage()]
    assert len(logged) == 1 and len(logged[0]) < STORED_TEXT_CHARS + 100
    assert "… [truncated " in logged[0]


def test_transition_bounds_error_traceback_and_event_data(stub_backend: StubBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli")
    transition(execution, ExecutionStatus.RUNNING)
    transition(
        execution,
        ExecutionStatus.FAILED,
        data={"error": "x\x00" * HUGE, "other": "kept"},
        error="e" * HUGE,
        traceback="t" * HUGE,
    )
    stored = Execution.objects.get(pk=execution.pk)
    assert len(stored.error) <= STORED_TEXT_CHARS and len(stored.traceback) <= STORED_TEXT_CHARS
    assert stored.error == bounded("e" * HUGE) and stored.traceback == bounded("t" * HUGE)
    data = stored.events.get(type="failed").data
    assert data["other"] == "kept"
    assert_bounded(data["error"])


def test_events_recorded_with_an_error_are_bounded(stub_backend: StubBackend) -> None:
    execution = dispatch("diag.noop", trigger_source="cli")
    record_event(execution, "note", {"error": "n" * HUGE})
    record_events(execution, [("notes", {"traceback": "\x00" * HUGE})])
    assert_bounded(execution.events.get(type="note").data["error"])
    assert_bounded(execution.events.get(type="notes").data["traceback"])


def test_short_errors_are_stored_as_they_are(stub_backend: StubBackend) -> None:
    execution = dispatch("diag.fail", {"message": "disk on fire"}, trigger_source="cli")
    run_pipeline(execution.pk)
    execution.refresh_from_db()
    assert execution.error == "RuntimeError: disk on fire"
