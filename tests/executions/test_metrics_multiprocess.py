"""Outcomes recorded in Celery worker children reach the web process's ``/metrics``.

The worker subprocess runs with ``PROMETHEUS_MULTIPROC_DIR`` pointing at a fresh
directory; the test process reads ``/metrics`` through the Django test client with the
``PROMETHEUS_MULTIPROC_DIR`` setting pointed at the same directory (its own values stay
in memory: prometheus_client chose that when it was imported), so every counted sample
below was written by another process.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from executions.backends import get_backend
from executions.backends.celery import CeleryBackend
from executions.dispatcher import dispatch
from executions.models import ExecutionStatus
from tests.executions.helpers import wait_for, wait_for_status
from tests.support.celery_worker import CeleryWorker

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

S = ExecutionStatus
FINAL = (S.SUCCEEDED, S.FAILED, S.TIMED_OUT, S.CANCELLED)


@pytest.fixture(scope="module")
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("prometheus")


@pytest.fixture(scope="module")
def celery_worker_env(metrics_dir: Path) -> dict[str, str]:
    """Fast timings, the real dead-letter queue, and the shared metrics directory."""
    return {
        "SPINE_HEARTBEAT_SECONDS": "1",
        "SPINE_LOCK_RETRY_SECONDS": "1",
        "SPINE_FAILURE_HANDLER": "dlq.services.park",
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }


def scrape(client: Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """``/metrics`` as {(sample name, labels): value}."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.content[:500]
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def sample(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return sum(
        value
        for (sample_name, sample_labels), value in samples.items()
        if sample_name == name and set(labels.items()) <= sample_labels
    )


def test_worker_outcomes_are_summed_into_the_web_scrape(
    settings: Any, fast: Any, celery_worker: CeleryWorker, metrics_dir: Path
) -> None:
    settings.EXECUTION_BACKEND = "celery"
    assert isinstance(get_backend(), CeleryBackend)
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ, "the test process counts in memory"
    settings.PROMETHEUS_MULTIPROC_DIR = str(metrics_dir)

    succeeded = dispatch("diag.noop", trigger_source="api")
    failed = dispatch("diag.fail", {"message": "no data"}, trigger_source="api")
    assert wait_for_status(succeeded, *FINAL).status == S.SUCCEEDED, celery_worker.log()[-3000:]
    assert wait_for_status(failed, *FINAL).status == S.FAILED, celery_worker.log()[-3000:]

    client = Client()

    def complete() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
        # The counters move just after the outcome is committed: poll the scrape.
        samples = scrape(client)
        parked = sample(samples, "spine_dlq_parked_total", pipeline="diag.fail")
        return samples if parked >= 1 else None

    samples = wait_for(complete, timeout=20, what="the worker's metrics in /metrics")
    finished = "spine_executions_finished_total"
    duration = "spine_execution_duration_seconds_count"
    assert sample(samples, finished, pipeline="diag.noop", status="succeeded") == 1
    assert sample(samples, finished, pipeline="diag.fail", status="failed") == 1
    assert sample(samples, duration, pipeline="diag.noop") == 1
    assert sample(samples, duration, pipeline="diag.fail") == 1
    assert sample(samples, "spine_dlq_parked_total", pipeline="diag.fail") == 1
    # Counted in the worker's files, not in this process's memory.
    assert list(metrics_dir.glob("counter_*.db")) and list(metrics_dir.glob("histogram_*.db"))
    # Scrape-time collectors join the multi-process scrape: the ledger gauges are served.
    assert sample(samples, "spine_dlq_open", pipeline="diag.fail") == 1
    assert b"# TYPE spine_executions_running gauge" in client.get("/metrics").content
