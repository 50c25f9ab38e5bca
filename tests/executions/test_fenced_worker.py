"""A worker paused mid-write past the reaper window: its run is fenced when it resumes.

The paused run's execution is reaped and requeued and a second worker runs it to the
end; when the first worker carries on, its open transaction reaches the fence, rolls
back and records ``fenced``. The data (``diag.write``'s rows) holds one run's set.
The test catches the first run inside its transaction with an advisory lock that
``diag.write`` waits for after writing, so nothing depends on how fast anything is.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus
from executions.recovery import reap_stale_executions
from tests.executions.helpers import event_types, wait_for, wait_for_status

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
ROWS = 5


@pytest.fixture
def gate(celery_database_url: str) -> Iterator[tuple[int, psycopg.Connection[Any]]]:
    """An advisory lock key held by a connection of the test's own."""
    key = random.randrange(1, 2**31)
    with psycopg.connect(celery_database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", [key])
        yield key, holder


def waiting_at(url: str, key: int) -> bool:
    """Whether a session waits for the advisory lock ``key``."""
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND classid = 0 "
            "AND objid = %s AND NOT granted",
            [key],
        ).fetchone()
    return bool(row and row[0])


def test_a_paused_worker_s_write_is_fenced_after_its_execution_ran_elsewhere(
    workers: Any, gate: tuple[int, psycopg.Connection[Any]], celery_database_url: str
) -> None:
    key, holder = gate
    first = workers()
    execution = dispatch("diag.write", {"rows": ROWS, "gate": key}, trigger_source="api")
    wait_for(
        lambda: waiting_at(celery_database_url, key),
        timeout=60,
        what="the first run to write and wait",
    )
    first.pause()
    holder.execute("SELECT pg_advisory_unlock(%s)", [key])  # later runs pass the gate
    second = workers()

    def settled() -> bool:
        reap_stale_executions()
        execution.refresh_from_db()
        return execution.status != S.RUNNING

    wait_for(settled, timeout=60, interval=0.5, what="the reaper to requeue the paused run")
    wait_for_status(execution, S.SUCCEEDED, S.FAILED, S.TIMED_OUT, timeout=60)
    assert execution.status == S.SUCCEEDED, second.log()[-3000:]
    first_run, second_run = execution.events.filter(type="started").order_by("id")
    assert execution.result == {"rows": ROWS, "run": second_run.data["run"]}

    first.resume()
    fenced = wait_for(
        lambda: execution.events.filter(type="fenced").first(),
        timeout=60,
        what="the resumed run to be fenced",
    )
    assert fenced.data["run"] == first_run.data["run"]
    assert fenced.data["error"] == (
        "fenced: the execution is succeeded and no longer this run's; "
        "this run's write was rolled back"
    )
    assert first.alive(), "the resumed worker carries on"
    execution.refresh_from_db()
    assert execution.status == S.SUCCEEDED
    assert execution.result == {"rows": ROWS, "run": second_run.data["run"]}
    written = execution.events.filter(type="written")
    assert written.count() == ROWS
    assert set(written.values_list("data__run", flat=True)) == {second_run.data["run"]}
    types = event_types(execution)
    assert types.count("requeued") == 1 and types.count("started") == 2
    assert types.index("requeued") < types.index("succeeded") < types.index("fenced")
    assert Execution.objects.get(pk=execution.pk).redeliveries == 1
