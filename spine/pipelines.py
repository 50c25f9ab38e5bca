"""Maintenance pipelines: the scheduled work, recorded in the ledger like any other.

Celery beat does not do maintenance itself: each tick dispatches one of these through
the Dispatcher with ``trigger_source="schedule"`` (see :mod:`spine.tasks`), so every
sweep, reap, retry pass, cleanup and scheduled fetch has an execution with its
result, duration and, if it fails, a dead letter. All run on the ``maintenance``
lane, away from a backlog of pipeline work.

* ``ops.sweep`` — hand pending executions to the backend again (the broker was down);
* ``ops.reap`` — settle running executions whose heartbeat stopped;
* ``ops.dlq_retry`` — replay dead letters whose automatic retry is due;
* ``ops.cleanup`` — retention: old finished executions, their events, resolved letters;
* ``otc.fetch_scheduled`` — work out the newest week FINRA has published for a tier
  (T1 after two weeks, T2/OTC after four) and dispatch ``otc.fetch_week`` for it, as
  children of this execution.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from rest_framework import serializers

from dlq import services as dlq_services
from executions import recovery
from executions.registry import RERUN_SAFE_REQUEUES, PipelineParams, pipeline
from executions.retention import DEFAULT_RETENTION
from executions.run_context import RunContext
from otc.models import Tier
from spine.maintenance import run_cleanup, scheduled_week

LANE = "maintenance"


@pipeline(
    "ops.sweep",
    lane=LANE,
    max_requeues=RERUN_SAFE_REQUEUES,
    timeout_seconds=300,
    description="Hand executions the backend never accepted (broker down) to it again.",
)
def sweep_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Re-submit pending executions and re-publish queued ones whose message was lost."""
    return {"handed_over": recovery.sweep_pending_executions()}


@pipeline(
    "ops.reap",
    lane=LANE,
    max_requeues=RERUN_SAFE_REQUEUES,
    timeout_seconds=300,
    description="Requeue or fail running executions whose worker stopped beating.",
)
def reap_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Settle silent running executions; list what was done to each."""
    reaped = recovery.reap_stale_executions()
    return {
        "reaped": len(reaped),
        "executions": [{"id": str(r.execution_id), "action": r.action} for r in reaped],
    }


class DlqRetryParams(PipelineParams):
    limit = serializers.IntegerField(
        min_value=1, max_value=10_000, default=100, help_text="At most this many letters a pass."
    )


@pipeline(
    "ops.dlq_retry",
    params=DlqRetryParams,
    lane=LANE,
    max_requeues=RERUN_SAFE_REQUEUES,
    timeout_seconds=600,
    description="Replay dead letters whose automatic retry time has come.",
)
def dlq_retry_pipeline(ctx: RunContext) -> dict[str, Any]:
    """One pass of the DLQ's automatic retries (each replay is a new execution)."""
    return dlq_services.retry_due(limit=ctx.params["limit"]).as_dict()


class CleanupParams(PipelineParams):
    older_than_days = serializers.IntegerField(
        min_value=1,
        default=DEFAULT_RETENTION.days,
        help_text="Delete finished executions (and events) older than this many days.",
    )
    dlq_older_than_days = serializers.IntegerField(
        min_value=0,
        required=False,
        allow_null=True,
        default=None,
        help_text="Delete resolved dead letters older than this (SPINE_DLQ_RETENTION_DAYS).",
    )


@pipeline(
    "ops.cleanup",
    params=CleanupParams,
    lane=LANE,
    max_requeues=RERUN_SAFE_REQUEUES,
    timeout_seconds=3600,
    description="Retention: old finished executions, their events and resolved dead letters.",
)
def cleanup_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Apply retention (the same as the ``cleanup`` command)."""
    p = ctx.params
    letters = p.get("dlq_older_than_days")
    return run_cleanup(
        timedelta(days=p["older_than_days"]),
        timedelta(days=settings.SPINE_DLQ_RETENTION_DAYS if letters is None else letters),
    )


class FetchScheduledParams(PipelineParams):
    tier = serializers.ChoiceField(choices=Tier.values, help_text="T1, T2 or OTC.")
    kinds = serializers.ChoiceField(
        choices=["both", "ats", "non_ats"],
        default="both",
        help_text="Fetch ATS volume, non-ATS OTC volume, or both (one child each).",
    )


@pipeline(
    "otc.fetch_scheduled",
    params=FetchScheduledParams,
    lane=LANE,
    max_requeues=RERUN_SAFE_REQUEUES,
    timeout_seconds=120,
    description="Dispatch otc.fetch_week for the newest week FINRA has published for a tier.",
)
def fetch_scheduled_pipeline(ctx: RunContext) -> dict[str, Any]:
    """Work out the week due for the tier and dispatch its fetches as children."""
    from executions.dispatcher import dispatch

    tier = ctx.params["tier"]
    week = scheduled_week(tier)
    flags = {"both": [True, False], "ats": [True], "non_ats": [False]}[ctx.params["kinds"]]
    children = []
    for ats in flags:
        child = dispatch(
            "otc.fetch_week",
            {"tier": tier, "week": week.isoformat(), "ats": ats},
            trigger_source=ctx.execution.trigger_source,
            parent=ctx.execution,
        )
        children.append({"ats": ats, "execution_id": str(child.pk), "status": child.status})
        ctx.event("child_dispatched", week=week.isoformat(), ats=ats, execution_id=str(child.pk))
    return {"tier": tier, "week": week.isoformat(), "children": children}
