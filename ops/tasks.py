"""The Celery task beat calls: dispatch one maintenance pipeline and run it in this worker.

The name stays ``spine.tasks.run_scheduled`` so existing beat rows keep working;
why it runs in-process is in docs/operations.md ("The schedule").
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from executions.backends import get_backend
from executions.dispatcher import Dispatcher
from executions.models import TriggerSource


# Routed by its beat entry (PeriodicTask.queue = "maintenance", see ops.schedules).
@shared_task(name="spine.tasks.run_scheduled", ignore_result=True)
def run_scheduled(pipeline: str, params: dict[str, Any] | None = None) -> str:
    """Dispatch ``pipeline`` (trigger: schedule) and run it in this process; its id."""
    dispatcher = Dispatcher(backend=get_backend("local"))
    execution = dispatcher.dispatch(pipeline, params or {}, trigger_source=TriggerSource.SCHEDULE)
    return str(execution.pk)
