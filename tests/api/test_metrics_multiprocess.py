"""``/metrics`` in multi-process mode: files from other processes, summed at scrape.

Each writer below is a real process with ``PROMETHEUS_MULTIPROC_DIR`` set; the scrape
in this process is pointed at the same directory through the setting. The Celery
worker case (executions finished in pool children) is in
``tests/executions/test_metrics_multiprocess.py``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from spine.celery import mark_metrics_process_dead
from spine.gunicorn import child_exit

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

WRITER = """
import sys
from prometheus_client import Counter, Gauge
Counter("spine_test_writes_total", "Test writes.", ["source"]).labels("child").inc(int(sys.argv[1]))
Gauge("spine_test_level", "Test level.", multiprocess_mode="max").set(int(sys.argv[1]))
"""


def write_from_a_process(directory: Path, amount: int) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(directory)}
    subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", WRITER, str(amount)], env=env, check=True, timeout=60
    )


def scrape_text() -> str:
    response = Client().get("/metrics")
    assert response.status_code == 200
    return response.content.decode()


def sample_value(text: str, name: str, **labels: str) -> float | None:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return None


def test_the_scrape_sums_every_process_files(settings: Any, tmp_path: Path) -> None:
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    write_from_a_process(tmp_path, 2)
    write_from_a_process(tmp_path, 3)
    text = scrape_text()
    assert sample_value(text, "spine_test_writes_total", source="child") == 5
    assert sample_value(text, "spine_test_level") == 3  # multiprocess_mode="max"
    # The database-derived gauges are computed here, at scrape time, as before.
    assert "# TYPE spine_executions_running gauge" in text
    assert "# TYPE spine_dlq_open gauge" in text
    # This process's in-memory registry (platform, process metrics) is not served.
    assert "python_info" not in text


def test_without_the_directory_the_process_registry_is_served(settings: Any) -> None:
    settings.PROMETHEUS_MULTIPROC_DIR = None
    text = scrape_text()
    assert "python_info" in text
    assert "# TYPE spine_executions_running gauge" in text


def test_reset_empties_the_directory_of_metric_files_only(settings: Any, tmp_path: Path) -> None:
    write_from_a_process(tmp_path, 1)
    (tmp_path / "notes.txt").write_text("kept")
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    out = StringIO()
    call_command("reset_metrics_dir", stdout=out)
    assert "Removed 2 metric file(s)" in out.getvalue()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["notes.txt"]
    settings.PROMETHEUS_MULTIPROC_DIR = None
    call_command("reset_metrics_dir", stdout=out)
    assert "nothing to reset" in out.getvalue()


def make_process_files(directory: Path, pid: int) -> None:
    for name in (f"gauge_livesum_{pid}.db", f"counter_{pid}.db", f"histogram_{pid}.db"):
        (directory / name).write_bytes(b"")


def test_gunicorn_drops_an_exited_worker_live_gauges(monkeypatch, tmp_path: Path) -> None:
    make_process_files(tmp_path, 4242)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))

    class Worker:
        pid = 4242

    child_exit(None, Worker())
    # Counters and histograms of the exited worker keep counting in the totals.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4242.db", "histogram_4242.db"]


def test_a_celery_pool_child_drops_its_live_gauges(settings: Any, tmp_path: Path) -> None:
    make_process_files(tmp_path, 4343)
    settings.PROMETHEUS_MULTIPROC_DIR = str(tmp_path)
    mark_metrics_process_dead(pid=4343, exitcode=0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_4343.db", "histogram_4343.db"]
