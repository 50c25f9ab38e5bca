"""The ``ops.*`` maintenance pipelines: sweep, reap, dead-letter retries, retention.

Beat dispatches them through :func:`ops.tasks.run_scheduled`; they run on the
``maintenance`` lane (docs/operations.md).
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
from ops.maintenance import run_cleanup

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
    launch_permission="dlq.replay_deadletter",
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
