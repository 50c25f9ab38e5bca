"""Schedules: created idempotently, each tick a maintenance execution (trigger: schedule)."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import pytest
from django_celery_beat.models import PeriodicTask

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource
from executions.registry import registry
from ops import schedules
from ops.tasks import run_scheduled
from otc.weeks import scheduled_week

pytestmark = pytest.mark.embedded
committed = pytest.mark.django_db(transaction=True)


@pytest.mark.django_db
def test_setup_schedules_is_idempotent(run_command: Any) -> None:
    first = run_command("setup_schedules", "--json")
    assert first.code == 0
    assert {row["action"] for row in first.json()} == {"created"}
    assert PeriodicTask.objects.filter(name__startswith=schedules.PREFIX).count() == len(
        schedules.SCHEDULES
    )
    second = run_command("setup_schedules", "--json")
    assert {row["action"] for row in second.json()} == {"unchanged"}
    assert PeriodicTask.objects.filter(name__startswith=schedules.PREFIX).count() == len(
        schedules.SCHEDULES
    )
    text = run_command("setup_schedules").out
    assert f"{len(schedules.SCHEDULES)} schedules, 0 created" in text


@pytest.mark.django_db
def test_operator_edits_are_kept_unless_reset(run_command: Any) -> None:
    schedules.ensure_schedules()
    task = PeriodicTask.objects.get(name="spine: reap silent executions")
    task.enabled = False
    task.save()
    kept = run_command("setup_schedules")
    assert "kept      spine: reap silent executions" in kept.out
    assert not PeriodicTask.objects.get(pk=task.pk).enabled
    reset = run_command("setup_schedules", "--reset", "--json").json()
    assert {r["name"]: r["action"] for r in reset}["spine: reap silent executions"] == "reset"
    assert PeriodicTask.objects.get(pk=task.pk).enabled


@pytest.mark.django_db
def test_every_schedule_dispatches_a_registered_pipeline_with_valid_params() -> None:
    schedules.ensure_schedules()
    rows = schedules.installed()
    wanted = {
        "ops.sweep",
        "ops.reap",
        "ops.dlq_retry",
        "ops.cleanup",
        "otc.fetch_scheduled",
        "otc.sync",
    }
    assert {spec.pipeline for spec in schedules.SCHEDULES} == wanted
    fetch_tiers, sync_tiers = set(), set()
    for spec in schedules.SCHEDULES:
        row = rows[spec.name]
        assert row is not None and row.enabled and row.task == "spine.tasks.run_scheduled"
        assert row.queue == "maintenance"
        kwargs = json.loads(row.kwargs)
        pipeline = registry.get(kwargs["pipeline"])
        pipeline.validate(kwargs["params"])
        # A sync's parent and its fetches are backfill work; the rest is maintenance.
        assert pipeline.lane == ("backfill" if spec.pipeline == "otc.sync" else "maintenance")
        if spec.pipeline == "otc.sync":
            sync_tiers.update(kwargs["params"]["tiers"])
            assert row.crontab is not None and row.crontab.day_of_week == "2"
        if spec.pipeline == "otc.fetch_scheduled":
            fetch_tiers.add(kwargs["params"]["tier"])
            assert row.crontab is not None and row.crontab.day_of_week == "2"
        if spec.every is not None:
            assert row.interval is not None and row.expire_seconds < spec.every.total_seconds()
    assert fetch_tiers == sync_tiers == {"T1", "T2", "OTC"}


def test_scheduled_week_follows_the_publication_delay() -> None:
    tuesday = date(2025, 12, 16)  # the Monday of its week is 2025-12-15
    assert scheduled_week("T1", tuesday) == date(2025, 11, 24)  # published 2025-12-15
    assert scheduled_week("T2", tuesday) == date(2025, 11, 10)  # published 2025-12-15
    assert scheduled_week("OTCE", tuesday) == date(2025, 11, 10)
    assert scheduled_week("T1", date(2025, 12, 21)) == date(2025, 11, 24)  # same week
    with pytest.raises(ValueError):
        scheduled_week("T9", tuesday)


@committed
def test_a_tick_is_an_execution_with_trigger_schedule(stub: Any) -> None:
    execution_id = run_scheduled("ops.reap")
    tick = Execution.objects.get(pk=execution_id)
    assert tick.trigger_source == TriggerSource.SCHEDULE
    assert tick.lane == "maintenance"
    assert tick.status == ExecutionStatus.SUCCEEDED
    assert tick.result == {"reaped": 0, "executions": []}
    assert stub.submitted == []  # ran here, not through "the broker"


@committed
def test_the_sweeper_runs_while_the_broker_refuses_work(stub: Any, settings: Any) -> None:
    settings.SPINE_SWEEP_AFTER_SECONDS = 0
    stub.fail_with = ConnectionError("broker down")
    stranded = dispatch("diag.noop", {}, trigger_source="api")
    assert stranded.status == ExecutionStatus.PENDING

    # The broker still refuses: the sweep itself runs and is recorded all the same.
    during = Execution.objects.get(pk=run_scheduled("ops.sweep"))
    assert during.status == ExecutionStatus.SUCCEEDED
    stranded.refresh_from_db()
    assert stranded.status == ExecutionStatus.PENDING

    stub.fail_with = None  # the broker is back: the next tick hands the work over
    after = Execution.objects.get(pk=run_scheduled("ops.sweep"))
    assert after.status == ExecutionStatus.SUCCEEDED and after.result == {"handed_over": 1}
    stranded.refresh_from_db()
    assert stranded.status == ExecutionStatus.QUEUED
    assert stub.submitted == [stranded.pk]


@committed
def test_scheduled_fetch_dispatches_fetch_week_children(stub: Any) -> None:
    tick = Execution.objects.get(pk=run_scheduled("otc.fetch_scheduled", {"tier": "T1"}))
    assert tick.status == ExecutionStatus.SUCCEEDED, tick.error
    week = scheduled_week("T1").isoformat()
    assert tick.result["week"] == week
    children = list(tick.children.order_by("params__ats"))
    assert [c.pipeline for c in children] == ["otc.fetch_week", "otc.fetch_week"]
    assert sorted(c.params["ats"] for c in children) == [False, True]
    assert {c.params["week"] for c in children} == {week}
    assert {c.trigger_source for c in children} == {TriggerSource.SCHEDULE}
    assert {c.status for c in children} == {ExecutionStatus.QUEUED}  # handed to "the broker"


@committed
def test_dlq_retry_and_cleanup_ticks(stub: Any) -> None:
    retry = Execution.objects.get(pk=run_scheduled("ops.dlq_retry"))
    assert retry.status == ExecutionStatus.SUCCEEDED
    assert retry.result == {"replayed": [], "skipped": []}
    cleanup = Execution.objects.get(pk=run_scheduled("ops.cleanup", {"older_than_days": 30}))
    assert cleanup.status == ExecutionStatus.SUCCEEDED
    assert cleanup.result["executions"] == 0 and cleanup.result["dead_letters"]["total"] == 0


def test_schedule_descriptions_read_well() -> None:
    whens = {spec.key: spec.when() for spec in schedules.SCHEDULES}
    assert whens["sweep pending executions"] == "every 2 min"
    assert whens["retention cleanup"] == "daily 03:30 UTC"
    assert whens["otc fetch T1"] == "Tuesdays 06:00 UTC"
    assert all(spec.name.startswith("spine: ") for spec in schedules.SCHEDULES)
    assert timedelta(minutes=2) == schedules.SCHEDULES[0].every
