"""The production backend: one Celery task per execution, on the execution's lane."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.conf import settings

from executions.backends.base import ExecutionBackend
from executions.models import Execution
from executions.registry import registry
from spine.time import utc_now

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

TASK_NAME = "executions.tasks.run_pipeline_task"
# A broker that does not answer makes dispatch wait at most about a second more.
PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.5}


def task_id_for(execution: Execution) -> str:
    """The Celery task id of the execution's latest hand-off."""
    return f"{execution.pk}:{execution.submissions}"


class CeleryBackend(ExecutionBackend):
    """Publishes ``run_pipeline_task(execution_id)`` to the lane's queue."""

    name = "celery"

    def __init__(self, app: Celery | None = None) -> None:
        self._app = app

    @property
    def app(self) -> Celery:
        if self._app is None:
            from spine.celery import app

            self._app = app
        return self._app

    def submit(self, execution: Execution) -> None:
        limit = registry.get(execution.pipeline).timeout_seconds
        eta = (
            execution.run_after if execution.run_after and execution.run_after > utc_now() else None
        )
        self.app.send_task(
            TASK_NAME,
            args=[str(execution.pk)],
            task_id=task_id_for(execution),
            queue=execution.lane,
            eta=eta,
            soft_time_limit=limit,
            time_limit=limit + settings.SPINE_TIME_LIMIT_GRACE_SECONDS,
            retry=True,
            retry_policy=PUBLISH_RETRY_POLICY,
        )

    def cancel(self, execution: Execution) -> None:
        try:
            self.app.control.revoke(task_id_for(execution))
        except Exception:
            # The runner refuses a cancelled execution anyway; revoking only saves a trip.
            logger.warning("could not revoke task for execution %s", execution.pk, exc_info=True)
