"""Retention deletes exactly what is past it, and nothing else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from dlq import services as dlq_services
from dlq.models import DeadLetter
from executions.backends import get_backend
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionEvent, ExecutionStatus
from executions.retention import purge_executions
from ops.maintenance import run_cleanup
from spine.time import ago

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]

DAY = timedelta(days=1)


@pytest.fixture
def local(settings: Any) -> None:
    settings.EXECUTION_BACKEND = "local"


def finished(pipeline: str = "diag.noop", *, days_ago: float, **params: Any) -> Execution:
    """An execution that ran (locally) and finished ``days_ago`` days ago."""
    execution = dispatch(pipeline, params, trigger_source="api")
    execution.refresh_from_db()
    assert execution.is_terminal
    when = ago(days=days_ago)
    Execution.objects.filter(pk=execution.pk).update(created_at=when, finished_at=when)
    return execution


def unfinished(status: str, *, days_ago: float) -> Execution:
    get_backend("stub").reset()
    execution = dispatch("diag.noop", {}, trigger_source="api")
    Execution.objects.filter(pk=execution.pk).update(status=status, created_at=ago(days=days_ago))
    return execution


def exists(execution: Execution) -> bool:
    return Execution.objects.filter(pk=execution.pk).exists()


def test_cleanup_deletes_exactly_what_is_past_retention(
    local: None, settings: Any, run_command: Any
) -> None:
    old_ok = finished(days_ago=100)
    old_child = dispatch("diag.noop", {}, trigger_source="admin", parent=old_ok)
    recent = finished(days_ago=10)
    just_inside = finished(days_ago=89)

    old_failed_open = finished("diag.fail", days_ago=100)  # its dead letter is open
    old_failed_purged = finished("diag.fail", days_ago=100)  # letter resolved long ago
    old_failed_kept = finished("diag.fail", days_ago=100)  # letter resolved yesterday
    letters = {
        e.pk: DeadLetter.objects.get(execution=e)
        for e in (old_failed_open, old_failed_purged, old_failed_kept)
    }
    dlq_services.discard(letters[old_failed_purged.pk], by=None, note="not wanted")
    dlq_services.discard(letters[old_failed_kept.pk], by=None, note="not wanted")
    DeadLetter.objects.filter(pk=letters[old_failed_purged.pk].pk).update(resolved_at=ago(days=40))
    DeadLetter.objects.filter(pk=letters[old_failed_kept.pk].pk).update(resolved_at=ago(days=1))

    settings.EXECUTION_BACKEND = "stub"
    old_pending = unfinished(ExecutionStatus.PENDING, days_ago=200)
    doomed = [old_ok, old_failed_purged]
    doomed_events = ExecutionEvent.objects.filter(execution__in=doomed).count()
    total_events = ExecutionEvent.objects.count()

    before = Execution.objects.count()
    dry = run_command(
        "cleanup", "--older-than", "90d", "--dlq-older-than", "30d", "--dry-run", "--json"
    )
    assert dry.code == 0
    assert Execution.objects.count() == before == 8  # a dry run deletes nothing...
    real = run_command("cleanup", "--older-than", "90d", "--dlq-older-than", "30d", "--json")
    report = real.json()
    # ...and counted exactly what the real run then deleted.
    for key in ("executions", "events", "dead_letters"):
        assert dry.json()[key] == report[key], key
    assert dry.json()["dry_run"] and not report["dry_run"]

    assert report["executions"] == 2
    assert report["events"] == doomed_events
    assert report["dead_letters"]["total"] == 1 and report["dead_letters"]["discarded"] == 1
    assert report["kept_for_dead_letters"] == 2
    assert not exists(old_ok) and not exists(old_failed_purged)
    for kept in (recent, just_inside, old_failed_open, old_failed_kept, old_pending, old_child):
        assert exists(kept), kept.pipeline
    assert ExecutionEvent.objects.count() == total_events - doomed_events
    assert not ExecutionEvent.objects.filter(execution_id__in=[e.pk for e in doomed]).exists()
    old_child.refresh_from_db()
    assert old_child.parent_id is None  # lineage link cleared, the child stays
    assert set(DeadLetter.objects.values_list("execution_id", flat=True)) == {
        old_failed_open.pk,
        old_failed_kept.pk,
    }

    again = run_command("cleanup", "--older-than", "90d", "--dlq-older-than", "30d")
    assert "deleted 0 execution(s) and 0 event(s)" in again.out


def test_cleanup_text_output_and_bad_input(local: None, run_command: Any) -> None:
    finished(days_ago=5)
    text = run_command("cleanup", "--older-than", "1d", "--dry-run").out
    assert "would delete 1 execution(s)" in text and "would delete 0 resolved dead letter" in text
    assert Execution.objects.count() == 1
    for bad in (["--older-than", "ninety"], ["--older-than=-5d"], ["--dlq-older-than", "x"]):
        result = run_command("cleanup", *bad)
        assert result.code == 2 and "age" in result.err
    assert Execution.objects.count() == 1


def test_large_purges_go_in_batches(local: None) -> None:
    for _ in range(5):
        finished(days_ago=120)
    result = purge_executions(timedelta(days=90), batch=2)
    assert result.executions == 5 and Execution.objects.count() == 0
    assert result.events > 0 and ExecutionEvent.objects.count() == 0


def test_run_cleanup_counts_match_purge_resolved(local: None) -> None:
    failed = finished("diag.fail", days_ago=100)
    letter = DeadLetter.objects.get(execution=failed)
    dlq_services.resolve(letter, by=None, note="fixed upstream")
    DeadLetter.objects.filter(pk=letter.pk).update(resolved_at=ago(days=31))
    report = run_cleanup(90 * DAY, 30 * DAY)
    assert report["dead_letters"] == {"total": 1, "replayed": 0, "resolved": 1, "discarded": 0}
    assert report["executions"] == 1 and not exists(failed)
