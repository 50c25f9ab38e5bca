"""Reads of the execution ledger and the pipeline registry, for the API and commands."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Q, QuerySet

from executions.models import Execution, ExecutionEvent, ExecutionStatus
from executions.registry import Pipeline, registry


def execution_list() -> QuerySet[Execution]:
    """Every execution, newest first (id breaks ties so pages never overlap)."""
    return Execution.objects.order_by("-created_at", "-id")


def execution_events(execution: Execution) -> QuerySet[ExecutionEvent]:
    """An execution's history in the order it happened."""
    return ExecutionEvent.objects.filter(execution=execution).order_by("timestamp", "id")


def pipeline_list() -> list[Pipeline]:
    """Every registered pipeline, by name."""
    return list(registry)


def pipeline_get(name: str) -> Pipeline:
    """One registered pipeline; raises ``UnknownPipeline``."""
    return registry.get(name)


def silent_running_executions(stale_before: datetime) -> QuerySet[Execution]:
    """Running executions with no heartbeat since ``stale_before`` (the reaper's work)."""
    silent = Q(heartbeat_at__lt=stale_before) | Q(
        heartbeat_at__isnull=True, started_at__lt=stale_before
    )
    return Execution.objects.filter(silent, status=ExecutionStatus.RUNNING).order_by("heartbeat_at")


def unsubmitted_executions(cutoff: datetime) -> QuerySet[Execution]:
    """Pending since before ``cutoff`` and due: the backend never accepted them."""
    return Execution.objects.filter(
        Q(run_after__isnull=True) | Q(run_after__lte=cutoff),
        Q(queued_at__isnull=True, created_at__lt=cutoff) | Q(queued_at__lt=cutoff),
        status=ExecutionStatus.PENDING,
    ).order_by("created_at")


def lost_queued_executions(queued_before: datetime) -> QuerySet[Execution]:
    """Queued, and due, since before ``queued_before`` (past the backend's window for
    starting a hand-off)."""
    return Execution.objects.filter(
        Q(run_after__isnull=True) | Q(run_after__lte=queued_before),
        status=ExecutionStatus.QUEUED,
        queued_at__lt=queued_before,
    ).order_by("queued_at")


def stale_queued_count(now: datetime) -> dict[str, int]:
    """Queued executions, and due, that have waited over ``SPINE_SWEEP_LOST_AFTER_SECONDS``
    for a worker (their message may be lost): how many, and the threshold."""
    from django.conf import settings

    threshold = settings.SPINE_SWEEP_LOST_AFTER_SECONDS
    stale = lost_queued_executions(now - timedelta(seconds=threshold)).count()
    return {"stale_queued": stale, "stale_after_seconds": threshold}
