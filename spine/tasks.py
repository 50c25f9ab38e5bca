"""The Celery task beat calls: dispatch one maintenance pipeline, run it right here.

``run_scheduled(pipeline, params)`` creates the execution through the Dispatcher with
``trigger_source="schedule"`` and runs it **in this worker process** (the local
backend), instead of publishing a second message. That is what keeps the sweeper
working when the broker misbehaves: once beat's message is delivered, nothing more
goes through the broker — the sweep runs, records its execution, and hands every
pending execution to the broker (the configured backend) again. When the broker is
down altogether no tick arrives at all; ``manage.py executions sweep`` (or the
``ops.sweep`` pipeline dispatched from a shell on the embedded backend) runs the same
service from any machine with database access.

Work the maintenance pipelines start themselves (the scheduled FINRA fetches, DLQ
replays) goes to the configured backend as usual, on its own lane.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from executions.backends import get_backend
from executions.dispatcher import Dispatcher
from executions.models import TriggerSource


# Routed by its beat entry (PeriodicTask.queue = "maintenance", see spine.schedules).
@shared_task(name="spine.tasks.run_scheduled", ignore_result=True)
def run_scheduled(pipeline: str, params: dict[str, Any] | None = None) -> str:
    """Dispatch ``pipeline`` (trigger: schedule) and run it in this process; its id."""
    dispatcher = Dispatcher(backend=get_backend("local"))
    execution = dispatcher.dispatch(pipeline, params or {}, trigger_source=TriggerSource.SCHEDULE)
    return str(execution.pk)
