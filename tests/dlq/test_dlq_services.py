"""Parking real failures, replaying them as new executions, resolving and discarding."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User

from dlq import selectors, services
from dlq.errors import (
    AlreadyResolved,
    DeadLetterError,
    DeadLetterNotFound,
    NoteRequired,
    ReplayRefused,
    RetriesExhausted,
)
from dlq.models import DeadLetter, FailureKind, Resolution
from executions.models import Execution, ExecutionStatus, TriggerSource
from tests.dlq.dlq_support import FLAKY

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def event_types(execution: Execution) -> list[str]:
    return list(execution.events.order_by("timestamp", "id").values_list("type", flat=True))


def test_failure_is_parked_with_traceback_and_snapshot(run_failure):
    execution, letter = run_failure("diag.fail", {"message": "boom: upstream said no"})

    assert execution.status == ExecutionStatus.FAILED
    assert letter.failure_kind == FailureKind.ERROR
    assert letter.pipeline == "diag.fail"
    assert letter.params == {"message": "boom: upstream said no"}
    assert letter.error == "RuntimeError: boom: upstream said no"
    assert "Traceback (most recent call last)" in letter.traceback
    assert "raise RuntimeError" in letter.traceback
    assert letter.attempts == 1
    assert letter.max_retries == 0
    assert letter.next_retry_at is None  # diag.fail has no automatic retries
    assert letter.is_open and letter.resolution == ""
    # The hand-off is part of the execution's history.
    assert event_types(execution)[-2:] == ["failed", "dead_lettered"]
    parked = execution.events.get(type="dead_lettered")
    assert parked.data["dead_letter_id"] == letter.pk


def test_park_is_idempotent_per_execution(run_failure):
    execution, letter = run_failure()
    again = services.park(execution, failure_kind="error")
    assert again.pk == letter.pk
    assert DeadLetter.objects.filter(execution=execution).count() == 1


def test_park_refuses_an_unknown_failure_kind(run_failure):
    execution, _ = run_failure()
    with pytest.raises(DeadLetterError, match="unknown failure kind 'meltdown'"):
        services.park(execution, failure_kind="meltdown")


def test_failure_kinds_are_recorded_as_given(run_failure):
    execution, letter = run_failure()
    letter.delete()
    relocked = services.park(execution, failure_kind="lock")
    assert relocked.failure_kind == FailureKind.LOCK
    assert relocked.get_failure_kind_display() == "Lock conflict"


def test_replay_creates_a_new_execution_with_a_parent_link(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    failed, letter = run_failure()

    with django_capture_on_commit_callbacks(execute=True):
        replay = services.retry(letter, by=operator)

    replay.refresh_from_db()
    assert replay.pk != failed.pk
    assert replay.parent_id == failed.pk
    assert replay.trigger_source == TriggerSource.RETRY
    assert replay.attempt == 2
    assert replay.params == failed.params
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED
    assert letter.replay_execution_id == replay.pk
    assert letter.resolved_by == operator
    assert letter.resolved_at is not None and letter.last_retry_at == letter.resolved_at
    assert not letter.is_open
    # The old execution is untouched but its history says where the replay went.
    failed.refresh_from_db()
    assert failed.status == ExecutionStatus.FAILED
    replayed_event = failed.events.get(type="dead_letter_replayed")
    assert replayed_event.data["replay_execution_id"] == str(replay.pk)
    assert replayed_event.data["by"] == operator.username


def test_a_replay_that_fails_again_continues_the_lineage(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    _, first = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        replay = services.retry(first, by=operator)

    second = DeadLetter.objects.get(execution=replay)
    assert second.previous_id == first.pk
    assert second.attempts == 2
    assert second.is_open
    assert [x.pk for x in selectors.dead_letter_lineage(second)] == [first.pk, second.pk]
    assert [x.pk for x in selectors.dead_letter_lineage(first)] == [first.pk, second.pk]


def test_replay_of_a_resolved_letter_is_refused(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    _, letter = run_failure()
    with django_capture_on_commit_callbacks(execute=True):
        replay = services.retry(letter, by=operator)

    with pytest.raises(AlreadyResolved, match=f"already replayed as execution {replay.pk}"):
        services.retry(letter, by=operator)
    with pytest.raises(AlreadyResolved):
        services.retry(letter, by=operator, force=True)  # force never reopens a letter
    assert Execution.objects.filter(parent=letter.execution).count() == 1


@pytest.mark.parametrize("close", ["resolve", "discard"])
def test_closed_letters_cannot_be_replayed_or_closed_again(run_failure, operator, close):
    _, letter = run_failure()
    getattr(services, close)(letter, by=operator, note="fixed upstream")
    with pytest.raises(AlreadyResolved, match=f"dead letter {letter.pk} is already"):
        services.retry(letter, by=operator)
    with pytest.raises(AlreadyResolved):
        services.discard(letter, by=operator)


def test_a_lineage_over_its_budget_needs_force(
    run_failure, operator: User, django_capture_on_commit_callbacks
):
    _, first = run_failure()  # diag.fail: no automatic retries; one manual replay allowed
    with django_capture_on_commit_callbacks(execute=True):
        replay = services.retry(first, by=operator)
    second = DeadLetter.objects.get(execution=replay)
    assert second.over_max_retries

    with pytest.raises(RetriesExhausted, match="over its retry budget") as refused:
        services.retry(second, by=operator)
    assert "force" in str(refused.value)
    second.refresh_from_db()
    assert second.is_open

    with django_capture_on_commit_callbacks(execute=True):
        forced = services.retry(second, by=operator, force=True)
    forced.refresh_from_db()
    assert forced.attempt == 3 and forced.parent_id == replay.pk
    second.refresh_from_db()
    assert second.note == "replayed (forced past the retry budget)"


def test_resolve_needs_a_note_and_records_who(run_failure, operator: User):
    _, letter = run_failure()
    with pytest.raises(NoteRequired, match="needs a note"):
        services.resolve(letter, by=operator, note="   ")
    letter.refresh_from_db()
    assert letter.is_open

    services.resolve(letter, by=operator, note="re-ingested by hand")
    letter.refresh_from_db()
    assert letter.resolution == Resolution.RESOLVED
    assert letter.note == "re-ingested by hand"
    assert letter.resolved_by == operator
    assert letter.execution.events.filter(type="dead_letter_resolved").exists()


def test_discard_closes_without_running(run_failure, operator: User):
    failed, letter = run_failure()
    services.discard(letter, by=operator)
    letter.refresh_from_db()
    assert letter.resolution == Resolution.DISCARDED
    assert letter.replay_execution_id is None
    assert not Execution.objects.filter(parent=failed).exists()


def test_replay_refused_when_stored_params_no_longer_validate(run_failure, operator: User):
    _, letter = run_failure()
    DeadLetter.objects.filter(pk=letter.pk).update(params={"message": "x", "stale_field": 1})
    letter.refresh_from_db()
    with pytest.raises(ReplayRefused, match="stored params no longer validate"):
        services.retry(letter, by=operator)
    letter.refresh_from_db()
    assert letter.is_open
    assert not Execution.objects.filter(parent=letter.execution).exists()


def test_replay_refused_when_the_pipeline_is_gone(run_failure, flaky_pipeline, operator: User):
    _, letter = run_failure(FLAKY, {"tier": "T2"})
    from executions.registry import registry

    registry.unregister(FLAKY)
    with pytest.raises(ReplayRefused, match="unknown pipeline 'dlq_test.flaky'"):
        services.retry(letter, by=operator)
    letter.refresh_from_db()
    assert letter.is_open


def test_get_dead_letter_explains_a_bad_id():
    with pytest.raises(DeadLetterNotFound, match="'abc' is not a dead letter id"):
        selectors.get_dead_letter("abc")
    with pytest.raises(DeadLetterNotFound, match="dead letter 999999 does not exist"):
        selectors.get_dead_letter(999999)


def test_worker_lost_after_requeues_waits_for_a_person(run_failure, flaky_pipeline):
    """The reaper already spent the budget on requeues: no automatic retry on top."""
    execution, letter = run_failure(FLAKY, {"tier": "T1"})
    letter.delete()
    Execution.objects.filter(pk=execution.pk).update(redeliveries=2)
    execution.refresh_from_db()
    lost = services.park(execution, failure_kind="worker_lost")
    assert lost.failure_kind == FailureKind.WORKER_LOST
    assert lost.next_retry_at is None
