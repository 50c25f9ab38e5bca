"""What the Celery backend puts on the wire (with a recording stand-in for the app)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from executions.backends.celery import TASK_NAME, CeleryBackend, task_id_for
from executions.dispatcher import Dispatcher
from executions.models import Execution
from spine.time import utc_now

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


class RecordingControl:
    def __init__(self) -> None:
        self.revoked: list[str] = []

    def revoke(self, task_id: str) -> None:
        self.revoked.append(task_id)


class RecordingApp:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.control = RecordingControl()

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append({"name": name, **options})


@pytest.fixture
def app(fast: Any) -> RecordingApp:
    return RecordingApp()


def test_one_task_per_hand_off_on_the_lane_with_the_pipeline_s_limits(app: RecordingApp) -> None:
    dispatcher = Dispatcher(backend=CeleryBackend(app))  # type: ignore[arg-type]
    execution = dispatcher.dispatch(
        "diag.sleep", {"seconds": 1}, trigger_source="api", lane="backfill"
    )
    [message] = app.sent
    assert message["name"] == TASK_NAME == "executions.tasks.run_pipeline_task"
    assert message["args"] == [str(execution.pk)]
    assert (
        message["task_id"]
        == f"{execution.pk}:1"
        == task_id_for(Execution.objects.get(pk=execution.pk))
    )
    assert message["queue"] == "backfill"
    assert message["soft_time_limit"] == 3 and message["time_limit"] == 4
    assert message["eta"] is None


def test_a_delayed_execution_carries_its_eta_and_can_be_revoked(app: RecordingApp) -> None:
    dispatcher = Dispatcher(backend=CeleryBackend(app))  # type: ignore[arg-type]
    execution = dispatcher.dispatch("diag.noop", trigger_source="retry", delay_seconds=30)
    [message] = app.sent
    assert message["eta"] > utc_now() + timedelta(seconds=25)
    dispatcher.cancel(execution, by="ops")
    assert app.control.revoked == [f"{execution.pk}:1"]


def test_the_task_is_registered_with_late_acks_and_no_stored_result() -> None:
    from executions.tasks import run_pipeline_task
    from spine.celery import app

    task = app.tasks[TASK_NAME]
    assert task is run_pipeline_task or task.name == run_pipeline_task.name
    assert task.acks_late and task.reject_on_worker_lost and task.ignore_result


def test_the_broker_redelivers_only_after_the_longest_pipeline_limit() -> None:
    from django.conf import settings

    from executions.registry import registry

    visibility = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    longest = max(p.timeout_seconds for p in registry)
    assert visibility > settings.SPINE_MAX_PIPELINE_TIMEOUT >= longest
