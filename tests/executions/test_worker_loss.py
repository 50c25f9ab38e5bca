"""A worker killed with SIGKILL mid-run: the execution is never lost, stuck or doubled.

The killed worker never acknowledges its message (late acks) and its heartbeat stops;
the reaper (run here from the test process, as beat would run it) settles the
execution by the pipeline's retry policy: ``diag.sleep`` may be requeued once.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import pytest

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from executions.recovery import reap_stale_executions
from tests.executions.conftest import FAST_SETTINGS
from tests.executions.fakes import EVENT
from tests.executions.helpers import event_types, wait_for, wait_for_status
from tests.support.celery_worker import CeleryWorker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus


def kill_mid_run(worker: CeleryWorker, execution: Execution) -> Execution:
    wait_for(lambda: execution.events.filter(type="sleeping").exists(), what="the run to start")
    time.sleep(0.3)
    worker.kill()
    execution.refresh_from_db()
    assert execution.status == S.RUNNING, "the dead worker leaves it running"
    return execution


def reap_until_settled(execution: Execution) -> None:
    def settled() -> bool:
        reap_stale_executions()
        execution.refresh_from_db()
        return execution.status != S.RUNNING

    wait_for(settled, interval=0.5, what="the reaper to settle it")


def test_a_killed_worker_s_execution_is_requeued_and_completed_by_a_new_worker(
    workers: Any,
) -> None:
    first = workers()
    execution = dispatch("diag.sleep", {"seconds": 1.5, "lock": "k"}, trigger_source="api")
    kill_mid_run(first, execution)
    second = workers()
    reap_until_settled(execution)
    assert execution.status in (S.QUEUED, S.RUNNING, S.SUCCEEDED)
    wait_for_status(execution, S.SUCCEEDED, S.FAILED, S.TIMED_OUT)
    assert execution.status == S.SUCCEEDED, second.log()[-3000:]
    assert execution.redeliveries == 1
    types = event_types(execution)
    assert types.count("started") == 2 and types.count("requeued") == 1
    assert (
        types.index("started")
        < types.index("requeued")
        < len(types) - 1 - types[::-1].index("started")
    )
    runs = list(execution.events.filter(type="started").order_by("id"))
    assert runs[0].data["pid"] != runs[1].data["pid"]
    requeued = execution.events.get(type="requeued")
    assert requeued.data["reason"] == "worker lost"
    # Reaped only once its last heartbeat was older than the reaper's window.
    silent = requeued.timestamp - datetime.fromisoformat(requeued.data["last_heartbeat"])
    assert silent >= timedelta(seconds=FAST_SETTINGS["SPINE_REAP_AFTER_SECONDS"]), silent
    # Never two at once: the first run's last sign of life precedes the requeue, and
    # the second run started after it.
    sleeping = list(execution.events.filter(type="sleeping").order_by("id"))
    assert len(sleeping) == 2 and sleeping[0].data["run"] != sleeping[1].data["run"]
    assert sleeping[0].timestamp < requeued.timestamp < runs[1].timestamp
    assert EVENT not in types


def test_when_the_policy_allows_no_more_requeues_it_fails_as_worker_lost(workers: Any) -> None:
    worker = workers()
    execution = dispatch("diag.sleep", {"seconds": 1.5}, trigger_source="api")
    Execution.objects.filter(pk=execution.pk).update(redeliveries=1)  # its one requeue is spent
    kill_mid_run(worker, execution)
    replacement = workers()
    reap_until_settled(execution)
    assert execution.status == S.FAILED
    assert execution.error.startswith("worker lost: no heartbeat since")
    handed = wait_for(lambda: execution.events.filter(type=EVENT).first())
    assert handed.data["failure_kind"] == "worker_lost"
    time.sleep(1)
    execution.refresh_from_db()
    assert execution.status == S.FAILED and event_types(execution).count("started") == 1
    assert replacement.alive()
