"""The one Celery task: run an execution (the message carries only its id)."""

from __future__ import annotations

from celery import shared_task

from executions.interrupts import watch_soft_time_limit
from executions.runner import run_pipeline


@shared_task(
    name="executions.tasks.run_pipeline_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_pipeline_task(execution_id: str) -> None:
    """Run one execution; its time limits arrive with the message (see the backend)."""
    watch_soft_time_limit()
    run_pipeline(execution_id, enforce_timeout=False)
