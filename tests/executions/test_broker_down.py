"""The broker is unreachable at submit: nothing is lost, the sweeper runs it later.

The shared Redis is never stopped: the submitting side is pointed at a port where
nothing listens, then the sweeper (with the live broker) hands the execution over.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from executions import dispatcher as dispatcher_module
from executions.backends.celery import CeleryBackend
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from executions.recovery import sweep_pending_executions
from ops.tasks import run_scheduled
from tests.executions.helpers import event_types, wait_for, wait_for_status
from tests.support.celery_worker import CeleryWorker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
DEAD_BROKER = "redis://127.0.0.1:6390/1"


@pytest.fixture
def live(settings: Any, fast: Any, celery_worker: CeleryWorker) -> CeleryWorker:
    settings.EXECUTION_BACKEND = "celery"
    return celery_worker


@pytest.fixture
def broker_down(live: CeleryWorker, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Point the default Dispatcher's submissions at a dead port until the test says so."""
    from spine.celery import app

    dead = Celery("spine-dead", set_as_current=False)
    dead.conf.update(
        broker_url=DEAD_BROKER,
        broker_transport_options={**app.conf.broker_transport_options},
        broker_connection_retry=False,
    )
    monkeypatch.setattr(dispatcher_module.default_dispatcher, "_backend", CeleryBackend(dead))
    yield
    dead.close()


def submit_while_down() -> tuple[Execution, float]:
    started = time.monotonic()
    execution = dispatch("diag.noop", trigger_source="api")
    return execution, time.monotonic() - started


def test_a_dispatch_with_the_broker_down_returns_and_stays_pending(
    broker_down: None, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    execution, took = submit_while_down()
    # Bounded by the publish retry policy and socket timeouts (seconds), not by a hang.
    assert took < 60, f"dispatch hung for {took:.1f}s"
    execution.refresh_from_db()
    assert execution.status == S.PENDING
    assert event_types(execution) == ["created", "queued", "submit_failed"]
    reason = execution.events.get(type="submit_failed").data
    assert reason["backend"] == "celery" and reason["retry"] == "sweeper"
    assert "6390" in reason["error"] or "refused" in reason["error"].lower(), reason

    # The broker is back: the sweeper hands it over and the worker runs it.
    monkeypatch.setattr(dispatcher_module.default_dispatcher, "_backend", None)
    settings.SPINE_SWEEP_AFTER_SECONDS = 3600
    assert sweep_pending_executions() == 0, "too fresh to sweep yet"
    settings.SPINE_SWEEP_AFTER_SECONDS = 1
    wait_for(lambda: sweep_pending_executions() == 1, what="the sweeper to hand it over")
    wait_for_status(execution, S.SUCCEEDED, S.FAILED)
    assert execution.status == S.SUCCEEDED
    assert event_types(execution) == [
        "created",
        "queued",
        "submit_failed",
        "queued",
        "started",
        "succeeded",
    ]
    assert execution.events.filter(type="queued").last().data["reason"] == "sweeper"
    assert execution.submissions == 2


def test_the_periodic_tasks_run_on_the_worker(
    broker_down: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    execution, _ = submit_while_down()
    monkeypatch.setattr(dispatcher_module.default_dispatcher, "_backend", None)
    time.sleep(1.1)
    # What beat sends: the scheduled sweep and reap, run on the maintenance lane.
    run_scheduled.apply_async(kwargs={"pipeline": "ops.sweep"}, queue="maintenance")
    run_scheduled.apply_async(kwargs={"pipeline": "ops.reap"}, queue="maintenance")
    wait_for(
        lambda: Execution.objects.get(pk=execution.pk).status == S.SUCCEEDED,
        what="the worker's sweeper to get it run",
    )
