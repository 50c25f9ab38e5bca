"""Work seen live in a real browser: an execution's step timeline redrawn by the page's
own reloads until it finishes, and the workers panel, in-process and with a real worker."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.cache import cache
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec

from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource
from executions.workers import CACHE_KEY
from tests.browser.conftest import Console
from tests.support.celery_worker import CeleryWorker

STEPS = 4


def status_of(console: Console) -> str:
    return console.read(".field-status_display .spine-badge, .field-status .spine-badge").lower()


def test_step_timeline_refreshes_by_itself_until_the_execution_finishes(
    signed_in: Console, local_backend: Any
) -> None:
    # Starts a second after the commit, on the local backend's timer thread.
    execution = dispatch(
        "diag.write",
        {"rows": 1, "steps": STEPS, "pause": 2.0},
        trigger_source=TriggerSource.API,
        delay_seconds=1,
    )
    console = signed_in
    console.open(f"/admin/executions/execution/{execution.pk}/change/", ready="#step-timeline")
    refresh = console.visible("#spine-refresh")
    assert int(refresh.get_attribute("data-refresh")) > 0
    seen = [status_of(console)]
    assert seen[0] in ("pending", "queued", "running"), seen
    console.screenshot("live")

    page = console.find("html")
    while seen[-1] != "succeeded":
        # The page reloads itself while the execution is live; the test never reloads it.
        console.until(ec.staleness_of(page), "the execution page did not reload by itself")
        page = console.find("html")
        seen.append(status_of(console))
        if seen[-1] == "running":
            console.screenshot("running")
    assert len(seen) >= 2, seen
    assert not console.find_all("#spine-refresh")  # finished: no more reloads

    steps = console.find_all("#step-timeline rect.spine-step")
    assert len(steps) == STEPS, console.text("#step-timeline")
    assert {step.get_attribute("data-status") for step in steps} == {"succeeded"}
    starts = [float(step.get_attribute("x")) for step in steps]
    assert starts == sorted(starts) and len(set(starts)) == STEPS  # one after another
    assert all(step.size["width"] > 0 for step in steps)
    console.screenshot("finished")
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED


def test_overview_workers_panel_says_in_process_on_the_local_backend(
    signed_in: Console, local_backend: Any
) -> None:
    dispatch("diag.noop", {}, trigger_source=TriggerSource.API)
    console = signed_in
    console.open("/admin/operations/", ready="#workers-panel")
    panel = console.find("#workers-panel")
    assert "local, in-process" in panel.text
    lanes = {
        row.get_attribute("data-lane")
        for row in panel.find_elements(By.CSS_SELECTOR, "tr[data-lane]")
    }
    assert {"default", "backfill", "maintenance"} <= lanes, lanes
    console.screenshot("workers-local")


@pytest.mark.celery_worker
def test_workers_panel_shows_a_real_worker_and_what_it_runs(
    signed_in: Console, settings: Any, celery_worker: CeleryWorker
) -> None:
    settings.EXECUTION_BACKEND = "celery"
    cache.delete(CACHE_KEY)
    execution = dispatch(
        "diag.write", {"rows": 1, "steps": 10, "pause": 1.0}, trigger_source=TriggerSource.API
    )
    console = signed_in
    console.until(
        lambda driver: Execution.objects.get(pk=execution.pk).status == ExecutionStatus.RUNNING,
        "the worker did not start the execution",
    )
    console.open("/admin/executions/execution/", ready="#workers-panel")
    row = f'#workers-panel tr[data-worker="{celery_worker.hostname}"]'

    def running_shown(driver: Any) -> list[str] | None:
        # The list reloads itself while the execution is live; no reload from the test.
        texts = [cell.text for cell in driver.find_elements(By.CSS_SELECTOR, f"{row} td")]
        return texts if len(texts) == 4 and str(execution.pk)[:8] in texts[3] else None

    _, lanes, concurrency, running = console.until(
        running_shown, "the worker's running execution is not shown"
    )
    assert {"default", "backfill", "maintenance"} <= set(lanes.split(", "))
    assert concurrency == "2"
    assert "diag.write" in running
    console.screenshot("workers-celery")
    console.until(
        lambda driver: Execution.objects.get(pk=execution.pk).is_terminal,
        "the worker did not finish the execution",
    )
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.SUCCEEDED, (execution.status, celery_worker.log())
