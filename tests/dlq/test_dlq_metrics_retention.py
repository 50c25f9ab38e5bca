"""Metrics move with the services; retention purges exactly what is past its age."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY

from dlq import services
from dlq.models import DeadLetter, Resolution
from spine.time import utc_now

pytestmark = [pytest.mark.django_db, pytest.mark.embedded]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_counters_and_open_gauge_move(run_failure, operator, django_capture_on_commit_callbacks):
    labels = {"pipeline": "diag.fail", "failure_kind": "error"}
    parked = sample("spine_dlq_parked_total", **labels)
    replayed = sample("spine_dlq_replayed_total", **labels, trigger="manual")
    resolved = sample("spine_dlq_resolved_total", **labels, resolution="resolved")
    discarded = sample("spine_dlq_resolved_total", **labels, resolution="discarded")

    _, a = run_failure()  # each runs and parks inside its own on-commit capture
    _, b = run_failure()
    _, c = run_failure()
    assert sample("spine_dlq_parked_total", **labels) == parked + 3
    assert sample("spine_dlq_open", **labels) == 3

    with django_capture_on_commit_callbacks(execute=True):
        services.retry(a, by=operator)  # its replay fails and parks one more
        services.resolve(b, by=operator, note="done")
        services.discard(c, by=operator)
    assert sample("spine_dlq_replayed_total", **labels, trigger="manual") == replayed + 1
    assert sample("spine_dlq_resolved_total", **labels, resolution="resolved") == resolved + 1
    assert sample("spine_dlq_resolved_total", **labels, resolution="discarded") == discarded + 1
    assert sample("spine_dlq_parked_total", **labels) == parked + 4
    assert sample("spine_dlq_open", **labels) == 1


def test_automatic_replays_are_counted_apart(
    run_failure, flaky_pipeline, django_capture_on_commit_callbacks
):
    labels = {"pipeline": "dlq_test.flaky", "failure_kind": "error", "trigger": "automatic"}
    before = sample("spine_dlq_replayed_total", **labels)
    _, letter = run_failure("dlq_test.flaky", {})
    with django_capture_on_commit_callbacks(execute=True):
        services.retry_due(now=letter.next_retry_at)
    assert sample("spine_dlq_replayed_total", **labels) == before + 1


def _age(letter: DeadLetter, *, resolved_days_ago: float | None, created_days_ago: float) -> None:
    now = utc_now()
    fields = {"created_at": now - timedelta(days=created_days_ago)}
    if resolved_days_ago is not None:
        fields.update(
            resolved_at=now - timedelta(days=resolved_days_ago),
            resolution=Resolution.DISCARDED,
        )
    DeadLetter.objects.filter(pk=letter.pk).update(**fields)


def test_purge_deletes_exactly_the_resolved_letters_past_retention(run_failure, settings, caplog):
    settings.SPINE_DLQ_RETENTION_DAYS = 30
    letters = [run_failure()[1] for _ in range(5)]
    old_resolved, older_resolved, recent_resolved, old_open, boundary = letters
    _age(old_resolved, resolved_days_ago=31, created_days_ago=40)
    _age(older_resolved, resolved_days_ago=400, created_days_ago=400)
    _age(recent_resolved, resolved_days_ago=29, created_days_ago=60)
    _age(old_open, resolved_days_ago=None, created_days_ago=365)  # open: never purged
    _age(boundary, resolved_days_ago=29.99, created_days_ago=31)

    with caplog.at_level(logging.INFO, logger="dlq.services"):
        counts = services.purge_resolved()

    assert counts == {"total": 2, "replayed": 0, "resolved": 0, "discarded": 2}
    remaining = set(DeadLetter.objects.values_list("pk", flat=True))
    assert remaining == {recent_resolved.pk, old_open.pk, boundary.pk}
    assert any("purged 2 resolved dead letters" in r.getMessage() for r in caplog.records)
    # Nothing left to purge: a second run deletes nothing and says so.
    assert services.purge_resolved()["total"] == 0


def test_purge_with_an_explicit_age(run_failure):
    _, letter = run_failure()
    _age(letter, resolved_days_ago=3, created_days_ago=3)
    assert services.purge_resolved(timedelta(days=5))["total"] == 0
    assert services.purge_resolved(timedelta(days=2))["total"] == 1
    assert not DeadLetter.objects.filter(pk=letter.pk).exists()


def test_purge_refuses_a_negative_age():
    with pytest.raises(services.DeadLetterError, match="cannot be negative"):
        services.purge_resolved(timedelta(days=-1))
