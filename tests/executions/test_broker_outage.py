"""The broker goes away under a busy worker, or comes back empty: nothing is lost.

Each test runs its own Redis on a free port (the shared one is never touched) and a
real worker whose broker it is; the test process publishes to it too, and sends the
sweep the way beat does (``run_scheduled`` on the maintenance lane).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from celery import Celery

from executions import dispatcher as dispatcher_module
from executions.backends.celery import CeleryBackend
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from tests.executions.helpers import event_types, wait_for
from tests.support.celery_worker import CeleryWorker, WorkerFactory
from tests.support.redis_server import RedisServer

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
FINAL = (S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED)
OUTAGE_SECONDS = 30
# Short enough for a test; the default is minutes.
LOST_AFTER_SECONDS = 2


@dataclass
class OwnBroker:
    server: RedisServer
    app: Celery

    def beat_sweep(self) -> None:
        """What beat sends every minute: the scheduled sweep."""
        self.app.send_task(
            "spine.tasks.run_scheduled", kwargs={"pipeline": "ops.sweep"}, queue="maintenance"
        )


@pytest.fixture
def own_broker(
    settings: Any, fast: Any, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[OwnBroker]:
    """The default Dispatcher publishes to the test's own Redis."""
    from spine.celery import app

    settings.EXECUTION_BACKEND = "celery"
    settings.SPINE_SWEEP_LOST_AFTER_SECONDS = LOST_AFTER_SECONDS
    own = Celery("spine-own-broker", set_as_current=False)
    own.conf.update(
        broker_url=redis_server.url(),
        broker_transport_options={**app.conf.broker_transport_options},
        broker_connection_retry=False,
    )
    monkeypatch.setattr(dispatcher_module.default_dispatcher, "_backend", CeleryBackend(own))
    yield OwnBroker(redis_server, own)
    own.close()


@pytest.fixture
def worker_on(workers: WorkerFactory) -> Any:
    """Start a worker on a broker of the test's own."""

    def start(broker: OwnBroker) -> CeleryWorker:
        return workers(
            REDIS_URL=broker.server.url(),
            SPINE_SWEEP_LOST_AFTER_SECONDS=str(LOST_AFTER_SECONDS),
        )

    return start


def sweep_until_finished(broker: OwnBroker, executions: list[Execution], worker: Any) -> None:
    """Send beat's sweep now and then until every execution has finished."""

    def finished() -> bool:
        if Execution.objects.filter(
            pk__in=[e.pk for e in executions], status__in=FINAL
        ).count() < len(executions):
            broker.beat_sweep()
            return False
        return True

    wait_for(finished, timeout=180, interval=2, what=f"{len(executions)} executions to finish")
    for execution in executions:
        execution.refresh_from_db()
        assert execution.status == S.SUCCEEDED, (event_types(execution), worker.log()[-3000:])
        assert event_types(execution).count("started") == 1, event_types(execution)


def test_a_busy_worker_survives_a_broker_outage_and_finishes_its_work_once(
    own_broker: OwnBroker, worker_on: Any
) -> None:
    worker = worker_on(own_broker)
    pid = worker.process.pid
    running = dispatch("diag.sleep", {"seconds": 1.5}, trigger_source="api")
    delayed = dispatch("diag.noop", trigger_source="api", delay_seconds=8)
    wait_for(lambda: running.events.filter(type="sleeping").exists(), what="the run to start")
    delayed_task = f"{delayed.pk}:{delayed.submissions}".encode()
    wait_for(
        lambda: any(delayed_task in m for m in own_broker.server.client().hvals("unacked")),
        what="the worker to hold the delayed message",
    )
    own_broker.server.stop(save=True)
    outage_ends = time.monotonic() + OUTAGE_SECONDS
    while time.monotonic() < outage_ends:
        assert worker.alive(), worker.log()[-4000:]
        time.sleep(0.5)
    own_broker.server.start()
    sweep_until_finished(own_broker, [running, delayed], worker)
    assert worker.alive() and worker.process.pid == pid, worker.log()[-4000:]
    assert "Unrecoverable error" not in worker.log()
    # The same worker takes new work over the connection it re-established.
    after = dispatch("diag.noop", trigger_source="api")
    sweep_until_finished(own_broker, [after], worker)


def test_queued_work_survives_a_broker_that_restarts_empty(
    own_broker: OwnBroker, worker_on: Any
) -> None:
    stranded = [dispatch("diag.noop", trigger_source="api") for _ in range(5)]
    assert own_broker.server.client().llen("default") == 5
    own_broker.server.stop()
    own_broker.server.start()
    assert own_broker.server.client().dbsize() == 0, "the broker came back empty"
    # Queued after the restart: their messages are there, so the sweep's republishing
    # makes duplicates, which must stay harmless.
    delivered = [dispatch("diag.noop", trigger_source="api") for _ in range(3)]
    time.sleep(LOST_AFTER_SECONDS + 0.5)  # past the threshold before anyone consumes
    from executions.recovery import sweep_pending_executions

    assert sweep_pending_executions() == 8, "every queued one presumed lost"
    worker = worker_on(own_broker)
    sweep_until_finished(own_broker, stranded + delivered, worker)
    for execution in stranded + delivered:
        resubmitted = execution.events.filter(type="resubmitted").first()
        assert resubmitted is not None and resubmitted.data["reason"] == "message presumed lost"
    wait_for(
        lambda: all(e.events.filter(type="delivery_ignored").exists() for e in delivered),
        what="the duplicates of the delivered ones to be refused",
    )
