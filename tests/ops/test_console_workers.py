"""The workers and queues panel: local backend, the ledger's lanes, beat, the broker."""

from __future__ import annotations

import re
from typing import Any

import pytest
from celery import Celery
from django.core.cache import cache
from django.test import Client
from django.urls import reverse
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from executions.dispatcher import dispatch
from executions.models import Execution
from executions.workers import (
    BROKER_UNREACHABLE,
    LOCAL_MODE,
    inspect_broker,
    workers_and_queues,
    workers_panel,
)
from spine.time import ago
from tests.support.celery_worker import (  # noqa: F401 - fixtures of the worker test
    celery_database_url,
    celery_worker,
    celery_worker_env,
)

CHANGELIST = reverse("admin:executions_execution_changelist")


def panel_html(client: Client) -> str:
    html = client.get(CHANGELIST).content.decode()
    match = re.search(r'<div id="workers-panel".*?\n</div>', html, re.S)
    assert match, "no workers panel on the executions list"
    return match.group(0)


@pytest.mark.embedded
@pytest.mark.django_db
def test_local_backend_says_local_in_process(admin_client: Client, local_backend: Any) -> None:
    panel = workers_and_queues()
    assert panel.mode == LOCAL_MODE and panel.in_process and panel.workers == ()
    assert workers_panel(None)["workers_panel"].mode == LOCAL_MODE
    html = panel_html(admin_client)
    assert "local, in-process" in html
    assert [lane for lane in re.findall(r'data-lane="([^"]+)"', html)] == [
        "default",
        "backfill",
        "maintenance",
    ]


@pytest.mark.embedded
@pytest.mark.django_db
def test_lanes_count_queued_executions_and_the_oldest_age(
    admin_client: Client, stub: Any, run_immediately: Any
) -> None:
    with run_immediately():
        first = dispatch("diag.noop", {}, trigger_source="api")
        dispatch("diag.noop", {}, trigger_source="api", lane="backfill")
        dispatch("diag.noop", {}, trigger_source="api", lane="backfill")
    Execution.objects.filter(pk=first.pk).update(queued_at=ago(seconds=125))
    lanes = {lane.name: lane for lane in workers_and_queues().lanes}
    assert lanes["default"].queued == 1 and lanes["backfill"].queued == 2
    assert lanes["maintenance"].queued == 0 and lanes["maintenance"].oldest_queued_at is None
    assert 125 <= lanes["default"].oldest_age_seconds < 130
    html = panel_html(admin_client)
    row = re.search(r'<tr data-lane="default">.*?</tr>', html, re.S).group(0)
    assert re.search(r">1</a>", row) and re.search(r"2 min 0\d s ago", row)


@pytest.mark.embedded
@pytest.mark.django_db
def test_beat_schedules_with_their_last_run(admin_client: Client, local_backend: Any) -> None:
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    PeriodicTask.objects.create(
        name="spine: sweep",
        task="spine.tasks.run_scheduled",
        interval=every,
        last_run_at=ago(minutes=3),
        total_run_count=1234,
    )
    PeriodicTask.objects.create(
        name="spine: idle", task="spine.tasks.run_scheduled", interval=every
    )
    schedules = {s.name: s for s in workers_and_queues().schedules}
    assert schedules["spine: sweep"].runs == 1234 and schedules["spine: idle"].last_run_at is None
    html = panel_html(admin_client)
    sweep = re.search(r'<tr data-schedule="spine: sweep">.*?</tr>', html, re.S).group(0)
    assert "UTC</time>" in sweep and "1,234" in sweep
    assert "never" in re.search(r'<tr data-schedule="spine: idle">.*?</tr>', html, re.S).group(0)


@pytest.mark.embedded
@pytest.mark.django_db
def test_an_unreachable_broker_is_reported_not_raised(
    admin_client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = Celery("nowhere", broker="redis://127.0.0.1:9/0")
    view = inspect_broker(nowhere, timeout=0.5)
    assert view.error == BROKER_UNREACHABLE and view.workers == ()

    import executions.workers as workers

    monkeypatch.setattr(workers, "inspect_broker", lambda app=None: view)
    settings.EXECUTION_BACKEND = "celery"
    cache.delete(workers.CACHE_KEY)
    html = panel_html(admin_client)
    assert "broker unreachable" in html
    assert 'data-lane="default"' in html  # the ledger's side still shows
    cache.delete(workers.CACHE_KEY)


@pytest.mark.embedded
@pytest.mark.django_db
def test_a_cache_that_is_down_too_does_not_break_the_page(
    admin_client: Client, settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import executions.workers as workers

    def down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("redis is down")

    monkeypatch.setattr(workers.cache, "get", down)
    monkeypatch.setattr(workers.cache, "set", down)
    nowhere = Celery("nowhere", broker="redis://127.0.0.1:9/0")
    monkeypatch.setattr(workers, "inspect_broker", lambda app=None: inspect_broker(nowhere, 0.5))
    settings.EXECUTION_BACKEND = "celery"
    response = admin_client.get(CHANGELIST)
    assert response.status_code == 200
    assert "broker unreachable" in response.content.decode()


@pytest.mark.celery_worker
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_is_listed_with_its_lanes_and_concurrency(
    admin_client: Client,
    settings: Any,
    celery_worker: Any,  # noqa: F811 - the fixture imported above
) -> None:
    from executions import workers

    settings.EXECUTION_BACKEND = "celery"
    cache.delete(workers.CACHE_KEY)
    panel = workers_and_queues()
    assert panel.error == "", panel.error
    found = {w.name: w for w in panel.workers}
    assert celery_worker.hostname in found, found
    worker = found[celery_worker.hostname]
    assert worker.lanes == ("backfill", "default", "maintenance") and worker.concurrency == 2
    assert all(isinstance(lane.broker_length, int) for lane in panel.lanes)
    html = panel_html(admin_client)
    assert celery_worker.hostname in html and "online" in html
    cache.delete(workers.CACHE_KEY)
