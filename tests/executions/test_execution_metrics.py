"""Execution metrics on the default Prometheus registry (what /metrics serves)."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY, generate_latest

from executions.backends.local import LocalBackend
from executions.backends.stub import StubBackend
from executions.dispatcher import dispatch
from executions.models import ExecutionStatus
from executions.services import transition

pytestmark = [pytest.mark.embedded]


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.django_db(transaction=True)
def test_submitted_finished_and_duration_move(local_backend: LocalBackend) -> None:
    before = {
        "submitted": value(
            "spine_executions_submitted_total", pipeline="diag.fail", trigger_source="cli"
        ),
        "failed": value("spine_executions_finished_total", pipeline="diag.fail", status="failed"),
        "durations": value("spine_execution_duration_seconds_count", pipeline="diag.fail"),
    }
    dispatch("diag.fail", trigger_source="cli")
    assert (
        value("spine_executions_submitted_total", pipeline="diag.fail", trigger_source="cli")
        == before["submitted"] + 1
    )
    assert (
        value("spine_executions_finished_total", pipeline="diag.fail", status="failed")
        == before["failed"] + 1
    )
    assert (
        value("spine_execution_duration_seconds_count", pipeline="diag.fail")
        == before["durations"] + 1
    )


@pytest.mark.django_db(transaction=True)
def test_lock_waits_are_counted(stub_backend: StubBackend) -> None:
    from executions.locks import acquire_lock
    from executions.runner import run_pipeline

    holder = dispatch("diag.sleep", {"lock": "m"}, trigger_source="cli")
    acquire_lock("diag:sleep:m", holder, holder.pk, ttl_seconds=60)
    waiter = dispatch("diag.sleep", {"lock": "m"}, trigger_source="cli")
    before = value("spine_execution_lock_waits_total", pipeline="diag.sleep", policy="wait")
    run_pipeline(waiter.pk)
    after = value("spine_execution_lock_waits_total", pipeline="diag.sleep", policy="wait")
    assert after == before + 1


@pytest.mark.django_db
def test_the_running_gauge_is_read_from_the_ledger(stub_backend: StubBackend) -> None:
    for _ in range(2):
        execution = dispatch("diag.noop", trigger_source="cli")
        transition(execution, ExecutionStatus.RUNNING)
    assert value("spine_executions_running", pipeline="diag.noop") == 2
    assert b"spine_executions_running" in generate_latest(REGISTRY)


def test_the_running_gauge_survives_a_database_it_cannot_reach() -> None:
    # No django_db mark: database access is refused here, and the scrape still works.
    assert b"spine_executions_running" in generate_latest(REGISTRY)
