"""An ``otc.full_etl`` whose worker is SIGKILLed recovers by itself once a worker is back.

The new worker's start-up reap (``worker_ready``) finds the run silent past the
reaper's window and requeues it (the pipeline allows two requeues), then runs it
again from the start: the result is one current capture with every row once. Past
the cap, the run fails as "worker lost" and is handed to the dead-letter queue.
"""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Count

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from otc.models import Capture, Reject, SymbolWeekSummary, VenueVolume
from otc.sample.generator import generate_week
from spine.time import utc_now
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types, wait_for, wait_for_status
from tests.support.celery_worker import CeleryWorker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
WEEK = date(2025, 12, 15)
ROWS = 150_000
REAP_AFTER_SECONDS = 3  # the worker side of FAST_SETTINGS


@pytest.fixture(scope="module")
def week_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("etl") / "t1-20251215.txt"
    generate_week(path, tier="T1", week=WEEK, rows=ROWS, seed=13, ats=False)
    return path


def in_inbox(file: Path, inbox: Path) -> str:
    """A copy of ``file`` in the test's inbox, named as pipelines name it."""
    shutil.copyfile(file, inbox / file.name)
    return file.name


def kill_in_step(worker: CeleryWorker, execution: Execution, step: str) -> str:
    """SIGKILL the worker once ``step`` has started; return the step it was in."""
    wait_for(
        lambda: execution.events.filter(type="step_started", data__step=step).exists(),
        timeout=300,
        what=f"the {step} step to start",
    )
    worker.kill()
    finished = set(
        execution.events.filter(type="step_finished").values_list("data__step", flat=True)
    )
    execution.refresh_from_db()
    assert execution.status == S.RUNNING, "the dead worker leaves it running"
    return step if step not in finished else f"after {step}"


def wait_until_silent(execution: Execution) -> None:
    """Until the reaper's rule calls the run lost (a condition, not a timing)."""

    def silent() -> bool:
        execution.refresh_from_db()
        last = execution.heartbeat_at or execution.started_at
        return last is not None and last < utc_now() - timedelta(seconds=REAP_AFTER_SECONDS)

    wait_for(silent, timeout=60, interval=0.2, what="its heartbeat to go stale")


def assert_one_current_capture_with_every_row_once() -> Capture:
    current = Capture.objects.filter(tier="T1", week=WEEK, superseded_at__isnull=True)
    assert current.count() == 1, list(current.values("pk", "status"))
    capture = current.get()
    assert Capture.objects.filter(tier="T1", week=WEEK).count() == 1, "no second capture"
    assert capture.row_count == ROWS
    rejects = Reject.objects.filter(capture=capture).count()
    volumes = VenueVolume.objects.filter(capture=capture)
    assert volumes.count() == ROWS - rejects
    doubled = volumes.values("symbol", "mpid").annotate(n=Count("pk")).filter(n__gt=1)
    # count(), not exists(): under LIMIT 1 the planner walks the symbols' index and
    # rescans the partition per symbol (docs/otc.md, "Known plan hazard").
    assert doubled.count() == 0
    symbols = volumes.values("symbol").distinct().count()
    assert SymbolWeekSummary.objects.filter(capture=capture).count() == symbols
    assert capture.computed_at is not None
    return capture


@pytest.mark.parametrize("step", ["ingest", "normalize", "compute"])
def test_a_full_etl_whose_worker_is_killed_completes_once_a_worker_is_back(
    workers: Any, week_file: Path, inbox: Path, step: str
) -> None:
    first = workers()
    execution = dispatch(
        "otc.full_etl",
        {"path": in_inbox(week_file, inbox), "tier": "T1", "week": str(WEEK), "ats": False},
        trigger_source="api",
    )
    where = kill_in_step(first, execution, step)
    wait_until_silent(execution)
    second = workers()  # its start-up reap requeues the run; nobody calls the reaper here
    wait_for_status(execution, S.SUCCEEDED, S.FAILED, S.TIMED_OUT, timeout=600)
    assert execution.status == S.SUCCEEDED, (where, execution.error, second.log()[-3000:])
    assert execution.redeliveries == 1
    types = event_types(execution)
    assert types.count("started") == 2 and types.count("requeued") == 1, types
    assert EVENT not in types
    capture = assert_one_current_capture_with_every_row_once()
    assert execution.result["capture_id"] == capture.pk


def test_past_its_requeue_cap_a_killed_full_etl_is_a_dead_letter(
    workers: Any, week_file: Path, inbox: Path
) -> None:
    first = workers()
    execution = dispatch(
        "otc.full_etl",
        {"path": in_inbox(week_file, inbox), "tier": "T1", "week": str(WEEK), "ats": False},
        trigger_source="api",
    )
    Execution.objects.filter(pk=execution.pk).update(redeliveries=2)  # both requeues spent
    kill_in_step(first, execution, "ingest")
    wait_until_silent(execution)
    replacement = workers()
    wait_for_status(execution, S.FAILED, S.SUCCEEDED, timeout=120)
    assert execution.status == S.FAILED
    assert "requeued 2 of 2 allowed times" in execution.error
    handed = wait_for(lambda: execution.events.filter(type=EVENT).first(), timeout=30)
    assert handed.data["failure_kind"] == "worker_lost"
    assert event_types(execution).count("started") == 1
    assert replacement.alive()
