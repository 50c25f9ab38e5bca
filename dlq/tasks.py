"""Celery tasks for the dead-letter queue's periodic work.

Thin wrappers: the rules live in :mod:`dlq.services`. Beat schedules them; both are
routed to the ``maintenance`` lane (``CELERY_TASK_ROUTES``) so a backlog of pipeline
work never delays a retry decision or the retention purge.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from celery import shared_task

from dlq import services


@shared_task(name="dlq.retry_due", ignore_result=False)
def retry_due_task(limit: int = 100) -> dict[str, Any]:
    """Replay the dead letters whose automatic retry time has come."""
    return services.retry_due(limit=limit).as_dict()


@shared_task(name="dlq.purge_resolved", ignore_result=False)
def purge_resolved_task(older_than_days: int | None = None) -> dict[str, int]:
    """Delete resolved dead letters past retention (``SPINE_DLQ_RETENTION_DAYS`` by default)."""
    older_than = timedelta(days=older_than_days) if older_than_days is not None else None
    return services.purge_resolved(older_than)
