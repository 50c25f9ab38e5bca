"""Celery tasks: the one task that runs executions, and the periodic recovery tasks.

``run_pipeline_task`` is deliberately thin: the message carries only the execution id
and the runner does the rest. It acknowledges late and is rejected back to the queue
if its worker process dies, and its result is not stored (the ledger is the result).
The recovery tasks are routed to the ``maintenance`` lane (``CELERY_TASK_ROUTES``).
"""

from __future__ import annotations

from celery import shared_task

from executions.recovery import reap_stale_executions as reap
from executions.recovery import sweep_pending_executions as sweep
from executions.runner import run_pipeline


@shared_task(
    name="executions.tasks.run_pipeline_task",
    acks_late=True,
    reject_on_worker_lost=True,
    ignore_result=True,
)
def run_pipeline_task(execution_id: str) -> None:
    """Run one execution; its time limits arrive with the message (see the backend)."""
    run_pipeline(execution_id, enforce_timeout=False)


@shared_task(name="executions.tasks.sweep_pending_executions", ignore_result=True)
def sweep_pending_executions() -> int:
    """Re-submit executions the backend never accepted (broker down at submit)."""
    return sweep()


@shared_task(name="executions.tasks.reap_stale_executions", ignore_result=True)
def reap_stale_executions() -> int:
    """Requeue or fail running executions whose worker stopped beating."""
    return len(reap())
