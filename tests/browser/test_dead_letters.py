"""Dead letters in a real browser: the grouped view, edit-and-replay with its diff, and a
group replayed in bulk at a low rate cap, its progress page reloading itself."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select

from dlq.models import DeadLetter, Resolution
from dlq.selectors import PROGRESS_EVENT, REPLAY_BATCH_PIPELINE
from executions.backends import get_backend
from executions.models import Execution, ExecutionStatus
from executions.runner import run_pipeline
from tests.browser.conftest import Console
from tests.browser.test_console import failed_letter

REPLAY_RATE = 30  # a minute: the batch's replays are 2 s apart


def seed_groups() -> tuple[list[DeadLetter], DeadLetter]:
    """Three letters failing the same way (only an order number differs) and one other."""
    same = [failed_letter(f"order {n} timed out after {n * 3} s")[1] for n in (101, 202, 303)]
    other = failed_letter("disk /var/spool/x full")[1]
    return same, other


def test_groups_page_groups_failures_by_signature(signed_in: Console, local_backend: Any) -> None:
    same, other = seed_groups()
    console = signed_in
    console.open("/admin/dlq/deadletter/", ready="#result_list")
    console.screenshot("dead-letters")
    console.click_and_load(console.find("a.dlq-groups-link"), ready="#dlq-groups")
    rows = console.find_all("#dlq-groups tr.dlq-group")
    assert len(rows) == 2
    biggest, smallest = rows  # biggest group first
    cells = biggest.find_elements(By.TAG_NAME, "td")
    assert cells[1].text == "3" and cells[2].text == "diag.fail"
    assert cells[4].text == "RuntimeError"
    assert f"#{same[-1].pk}" in cells[7].text or f"#{same[0].pk}" in cells[7].text
    assert smallest.find_elements(By.TAG_NAME, "td")[1].text == "1"
    assert "disk" in smallest.text
    assert biggest.find_element(By.CSS_SELECTOR, "a.dlq-group-replay").is_displayed()
    console.screenshot("groups")

    # A group's count leads to its letters, and only those.
    console.click_and_load(cells[1].find_element(By.TAG_NAME, "a"), ready="#result_list")
    listed = console.text("#result_list")
    assert "order 101 timed out" in listed and "order 303 timed out" in listed
    assert "disk" not in listed
    console.screenshot("group-letters")


def test_edit_and_replay_shows_the_diff_then_replays_with_the_new_params(
    signed_in: Console, local_backend: Any, superuser: User
) -> None:
    failed, letter = failed_letter("bad input from vendor")
    console = signed_in
    console.open(f"/admin/dlq/deadletter/{letter.pk}/change/", ready="a.dlq-edit-replay")
    console.click_and_load(console.find("a.dlq-edit-replay"), ready="#dlq-edit-form")
    field = console.find("#dlq-edit-form [name='params-message']")
    assert field.get_attribute("value") == "bad input from vendor"  # prefilled
    console.screenshot("edit-form")

    field.clear()
    field.send_keys("x" * 501)  # over the pipeline's max_length: refused on the form
    console.click_and_load(console.find('#dlq-edit-form [type="submit"]'), ready=".errornote")
    assert "500" in console.text("#dlq-edit-form")
    console.screenshot("edit-refused")
    letter.refresh_from_db()
    assert letter.is_open and letter.params_changes == []

    field = console.find("#dlq-edit-form [name='params-message']")
    field.clear()
    field.send_keys("corrected input")
    console.click_and_load(console.find('#dlq-edit-form [type="submit"]'), ready="#dlq-diff")
    diff = console.find("#dlq-diff tbody tr")
    assert diff.find_element(By.CSS_SELECTOR, ".old").text.strip('"') == "bad input from vendor"
    assert diff.find_element(By.CSS_SELECTOR, ".new").text.strip('"') == "corrected input"
    console.screenshot("edit-confirmation")
    letter.refresh_from_db()
    assert letter.is_open  # nothing runs before the confirmation

    submit = console.find('input[type="submit"].default')
    assert submit.get_attribute("value") == "Yes, replay with these params"
    console.click_and_load(submit, ready="#dlq-params-changes")
    assert "replayed with edited params" in console.text(".messagelist")
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED
    assert letter.original_params == {"message": "bad input from vendor"}
    assert letter.replay_execution.params["message"] == "corrected input"
    assert letter.replay_execution.parent_id == failed.pk
    changes = console.text("#dlq-params-changes")
    assert superuser.username in changes and "corrected input" in changes
    link = console.driver.find_element(
        By.CSS_SELECTOR,
        f'.messagelist a[href$="/admin/executions/execution/{letter.replay_execution_id}/change/"]',
    )
    console.screenshot("edit-replayed")
    console.click_and_load(link, ready="#content-main")
    assert "corrected input" in console.text("#content-main")
    console.screenshot("edit-replay-execution")


@pytest.fixture
def worker_thread() -> Iterator[Any]:
    """Runs one execution in a thread of its own, as a worker would (the stub backend
    only records submissions); its database connection closes when it is done."""
    threads: list[threading.Thread] = []

    def start(execution_id: uuid.UUID) -> threading.Thread:
        def run() -> None:
            try:
                run_pipeline(execution_id)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run, name=f"worker-{execution_id}", daemon=True)
        thread.start()
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive(), "the worker thread did not finish"


@pytest.fixture
def paced_groups(local_backend: Any, settings: Any) -> tuple[list[DeadLetter], DeadLetter]:
    """The letters of :func:`seed_groups`; then a low replay rate, and a backend that only
    records, so the batch and its replays wait for a worker (``worker_thread``)."""
    letters = seed_groups()
    settings.SPINE_REPLAY_RATE = REPLAY_RATE
    settings.EXECUTION_BACKEND = "stub"
    get_backend().reset()
    return letters


def watch_batch(console: Console, worker_thread: Any, letters: list[DeadLetter]) -> None:
    """On a new batch's page: run it, watch it finish without reloading, check each replay."""
    batch = Execution.objects.get(pipeline=REPLAY_BATCH_PIPELINE)
    assert batch.status == ExecutionStatus.QUEUED
    assert f"/admin/dlq/deadletter/batches/{batch.pk}/" in console.driver.current_url
    total = len(letters)
    assert console.text("#dlq-batch-progress").startswith(f"0 of {total} done")
    console.screenshot("batch-queued")

    seen = [console.read("#dlq-batch-progress")]
    page = console.find("html")
    worker_thread(batch.pk)
    while not seen[-1].startswith(f"{total} of {total} done"):
        # The page reloads itself while the batch runs; the test never reloads it.
        console.until(ec.staleness_of(page), "the batch page did not reload by itself")
        page = console.find("html")
        seen.append(console.read("#dlq-batch-progress"))
    done = [int(text.split(" of ")[0]) for text in seen]
    assert done == sorted(done), seen  # progress only moves forward
    console.until(
        lambda driver: driver.find_elements(
            By.CSS_SELECTOR, "#content-main .spine-badge-succeeded"
        ),
        "the finished batch is not shown as succeeded",
    )
    console.screenshot("batch-done")

    batch.refresh_from_db()
    assert batch.status == ExecutionStatus.SUCCEEDED
    progress = list(batch.events.filter(type=PROGRESS_EVENT).order_by("timestamp"))
    assert len(progress) == total
    gaps = [(b.timestamp - a.timestamp).total_seconds() for a, b in pairwise(progress)]
    assert all(gap >= 60 / REPLAY_RATE - 0.1 for gap in gaps), gaps  # the rate cap held

    rows = console.find_all("#dlq-batch-letters tbody tr.dlq-replayed")
    assert len(rows) == total
    for row, letter in zip(rows, letters, strict=True):  # oldest first
        letter.refresh_from_db()
        assert letter.resolution == Resolution.REPLAYED
        href = f"/admin/executions/execution/{letter.replay_execution_id}/change/"
        assert row.find_element(By.CSS_SELECTOR, f'a[href$="{href}"]').is_displayed()
    console.click_and_load(rows[0].find_element(By.CSS_SELECTOR, 'a[href*="/execution/"]'))
    assert str(letters[0].replay_execution_id) in console.driver.current_url
    console.screenshot("batch-replay-execution")


def test_replay_selected_at_a_low_rate_cap_shows_progress_and_each_replay(
    signed_in: Console, paced_groups: Any, worker_thread: Any
) -> None:
    same, other = paced_groups
    console = signed_in
    console.open(
        f"/admin/dlq/deadletter/?state=open&signature={same[0].signature}", ready="#result_list"
    )
    assert len(console.find_all("#result_list tbody tr")) == 3
    console.find("#action-toggle").click()
    Select(console.find('select[name="action"]')).select_by_value("replay_paced_selected")
    console.screenshot("selected")
    console.click_and_load(console.find('button[name="index"]'), ready="#dlq-plan")
    assert console.text("#dlq-summary").startswith("3 will be queued")
    submit = console.find('input[type="submit"].default')
    assert submit.get_attribute("value") == "Yes, replay at the rate cap"
    console.screenshot("replay-selected-confirmation")
    console.click_and_load(submit, ready="#dlq-batch-progress")
    assert f"at most {REPLAY_RATE} a minute" in console.text(".messagelist")
    watch_batch(console, worker_thread, same)
    other.refresh_from_db()
    assert other.is_open  # not selected, not replayed


def test_group_replay_at_a_low_rate_cap_shows_progress_and_each_replay(
    signed_in: Console, paced_groups: Any, worker_thread: Any
) -> None:
    same, other = paced_groups
    console = signed_in
    console.open("/admin/dlq/deadletter/groups/", ready="#dlq-groups")
    console.click_and_load(console.find("a.dlq-group-replay"), ready="#dlq-group-summary")
    assert console.text("#dlq-group-summary").startswith("3 open dead letters of diag.fail")
    assert f"at most {REPLAY_RATE} a minute" in console.text("#content-main")
    console.screenshot("group-replay-confirmation")
    submit = console.find('input[type="submit"].default')
    assert submit.get_attribute("value") == "Yes, replay group"
    console.click_and_load(submit, ready="#dlq-batch-progress")
    watch_batch(console, worker_thread, same)
    other.refresh_from_db()
    assert other.is_open
