"""Automatic retries: exponential backoff with jitter, up to max_retries, then a person.

Time is passed in (``now=``), never slept: a letter is due exactly at its
``next_retry_at`` and not a microsecond before.
"""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from dlq import services
from dlq.errors import RetriesExhausted
from dlq.models import DeadLetter, Resolution
from executions.models import Execution, ExecutionStatus, TriggerSource
from executions.registry import RetryPolicy
from spine.time import utc_now
from tests.dlq.dlq_support import FLAKY, FLAKY_POLICY, FLAKY_STATE

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]

US = timedelta(microseconds=1)


def letter_of(execution: Execution) -> DeadLetter:
    return DeadLetter.objects.get(execution=execution)


def assert_backoff(letter: DeadLetter, retry_number: int, before, after) -> None:
    """next_retry_at lies in the jitter window of the policy's ceiling for this retry."""
    ceiling = min(
        FLAKY_POLICY.backoff_max_seconds,
        FLAKY_POLICY.backoff_seconds * 2 ** (retry_number - 1),
    )
    assert letter.next_retry_at is not None
    assert before + timedelta(seconds=ceiling / 2) <= letter.next_retry_at
    assert letter.next_retry_at <= after + timedelta(seconds=ceiling)


def test_retries_follow_backoff_until_max_then_wait_for_a_person(
    run_failure, flaky_pipeline, django_capture_on_commit_callbacks
):
    before = utc_now()
    first_exec, first = run_failure(FLAKY, {"tier": "T2"})
    assert_backoff(first, 1, before, utc_now())  # 5..10 s
    assert first.max_retries == 2 and first.attempts == 1

    # Not due a microsecond early; nothing happens.
    early = services.retry_due(now=first.next_retry_at - US)
    assert early.replayed == [] and early.skipped == []
    first.refresh_from_db()
    assert first.is_open

    # Due: replayed automatically as attempt 2, which fails again.
    before = utc_now()
    with django_capture_on_commit_callbacks(execute=True):
        result = services.retry_due(now=first.next_retry_at)
    assert [letter_id for letter_id, _ in result.replayed] == [first.pk]
    first.refresh_from_db()
    assert first.resolution == Resolution.REPLAYED
    assert first.resolved_by is None
    assert first.note == "automatic retry 1 of 2"
    second_exec = first.replay_execution
    assert second_exec.trigger_source == TriggerSource.RETRY
    assert second_exec.parent_id == first_exec.pk and second_exec.attempt == 2
    second = letter_of(second_exec)
    assert second.attempts == 2 and second.previous_id == first.pk
    assert_backoff(second, 2, before, utc_now())  # ceiling 15 s (20 capped): 7.5..15 s

    with django_capture_on_commit_callbacks(execute=True):
        result = services.retry_due(now=second.next_retry_at)
    assert [letter_id for letter_id, _ in result.replayed] == [second.pk]
    second.refresh_from_db()
    assert second.note == "automatic retry 2 of 2"
    third = letter_of(second.replay_execution)
    assert third.attempts == 3
    assert third.next_retry_at is None  # the budget is spent: it waits for a person
    assert third.retries_exhausted and not third.over_max_retries

    # However far time goes, nothing more happens automatically.
    later = services.retry_due(now=utc_now() + timedelta(days=365))
    assert later.replayed == []
    third.refresh_from_db()
    assert third.is_open
    with pytest.raises(RetriesExhausted, match="no automatic retry left"):
        services._replay(third, by=None, force=False, note="", automatic=True, now=utc_now())

    # A person replays after fixing the cause: it runs as attempt 4 and succeeds.
    FLAKY_STATE["fail"] = False
    with django_capture_on_commit_callbacks(execute=True):
        fourth_exec = services.retry(third, by=None)
    fourth_exec.refresh_from_db()
    assert fourth_exec.status == ExecutionStatus.SUCCEEDED
    assert fourth_exec.attempt == 4
    assert not DeadLetter.objects.filter(execution=fourth_exec).exists()
    assert Execution.objects.filter(pipeline=FLAKY).count() == 4


def test_retry_due_skips_letters_closed_meanwhile(run_failure, flaky_pipeline):
    _, letter = run_failure(FLAKY, {})
    services.discard(letter, by=None, note="not wanted")
    result = services.retry_due(now=utc_now() + timedelta(hours=1))
    assert result.replayed == [] and result.skipped == []  # closed letters are never due


def test_retry_due_replays_due_letters_in_order_and_respects_limit(stub_backend, flaky_pipeline):
    from executions.dispatcher import dispatch

    t0 = utc_now()
    letters = []
    for offset in (30, 10, 20):
        failed = dispatch(FLAKY, {}, trigger_source="cli")
        letter = services.park(failed, failure_kind="error", now=t0)
        DeadLetter.objects.filter(pk=letter.pk).update(next_retry_at=t0 + timedelta(seconds=offset))
        letters.append(letter.pk)

    result = services.retry_due(now=t0 + timedelta(seconds=25), limit=1)
    assert [pk for pk, _ in result.replayed] == [letters[1]]  # the earliest due first
    result = services.retry_due(now=t0 + timedelta(seconds=25))
    assert [pk for pk, _ in result.replayed] == [letters[2]]  # the 30 s one is not due


def test_backoff_uses_the_policy_with_jitter(run_failure, flaky_pipeline):
    execution, letter = run_failure(FLAKY, {})
    letter.delete()
    t0 = utc_now()
    parked = services.park(execution, failure_kind="error", now=t0, rng=random.Random(7))
    expected = FLAKY_POLICY.delay_for(1, random.Random(7))
    assert parked.next_retry_at == t0 + timedelta(seconds=expected)
    assert 5 <= expected <= 10


def test_delays_double_and_cap():
    policy = RetryPolicy(max_retries=6, backoff_seconds=30, backoff_max_seconds=200)

    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    assert [policy.delay_for(n, Top()) for n in range(1, 6)] == [30, 60, 120, 200, 200]
