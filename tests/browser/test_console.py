"""The console in a real browser: sign in, the operations overview and its chart, a
dead letter's replay through its confirmation page, and an execution's page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.contrib.auth.models import User
from selenium.webdriver.common.by import By

from dlq.models import Resolution
from executions.dispatcher import dispatch
from executions.models import TriggerSource
from tests.browser.conftest import PASSWORD, Console
from tests.browser.seeds import failed_letter
from tests.support.otc_weeks import computed_weeks


def test_sign_in_refuses_a_bad_password_then_lands_on_the_index(
    console: Console, superuser: User
) -> None:
    console.open("/admin/", ready="#login-form")  # anonymous: sent to the login form
    assert "/admin/login/" in console.driver.current_url
    console.find("#id_username").send_keys(superuser.username)
    console.find("#id_password").send_keys("not-the-password")
    console.click_and_load(console.find('#login-form [type="submit"]'), ready=".errornote")
    assert "correct username and password" in console.text(".errornote")
    console.screenshot("login-refused")
    assert console.driver.get_cookie("sessionid") is None

    console.sign_in(superuser.username, PASSWORD)
    console.visible("#spine-operations")
    assert console.driver.current_url.rstrip("/").endswith("/admin")
    assert superuser.username.upper() in console.text("#user-tools").upper()
    assert "Operations overview" in console.text("#spine-operations")
    assert console.text("#site-name") == "Market Spine"
    assert "Market Spine" in console.driver.title
    content = console.find("#content-main")
    assert content.find_element(By.LINK_TEXT, "Dead letters").is_displayed()
    assert content.find_element(By.LINK_TEXT, "Executions").is_displayed()
    console.screenshot("index")


def test_overview_draws_the_market_share_chart(
    signed_in: Console, local_backend: Any, tmp_path: Path
) -> None:
    captures = computed_weeks(tmp_path)
    dispatch("diag.noop", {}, trigger_source=TriggerSource.API)
    failed_letter()
    console = signed_in
    console.click_and_load(
        console.driver.find_element(By.LINK_TEXT, "Operations overview"),
        ready="#spine-market-share svg",
    )
    assert console.text('#spine-executions [data-status="succeeded"] .n') == "1"
    assert console.text('#spine-executions [data-status="failed"] .n') == "1"
    assert "1" in console.text("#spine-dead-letters") and "open dead letter" in console.text(
        "#spine-dead-letters"
    )
    assert captures[-1].week.isoformat() in console.text('#spine-freshness [data-tier="T1"]')

    chart = console.find("#spine-market-share svg")
    assert chart.size["width"] > 300 and chart.size["height"] > 150, chart.size
    points = chart.find_elements(By.CSS_SELECTOR, "circle")
    series = {point.get_attribute("data-series") for point in points}
    assert "Other" in series and len(series) == 7, series
    assert len(points) == 7 * len(captures)  # one point per series and week
    # The points are drawn inside the chart, not stacked at its origin.
    xs = {round(point.rect["x"]) for point in points}
    assert len(xs) == len(captures)
    console.screenshot("overview")

    console.click_and_load(
        console.find("#spine-dead-letters a"), ready="#result_list"
    )  # the open-letter count leads to the list
    assert "vendor feed timed out" in console.text("#result_list")
    console.screenshot("dead-letters-open")
    assert console.columns_fit()  # every column, the failed execution too, at 1366 px

    console.open("/admin/otc/capture/", ready="#result_list")
    console.screenshot("captures")
    assert console.columns_fit()


def test_dead_letter_replay_confirms_and_links_the_replay(
    signed_in: Console, local_backend: Any
) -> None:
    failed, letter = failed_letter("upstream said no")
    console = signed_in
    console.open(f"/admin/dlq/deadletter/{letter.pk}/change/", ready="#dlq-error")
    assert "upstream said no" in console.text("#dlq-error")
    assert "Traceback" in console.text("#dlq-traceback")
    console.screenshot("dead-letter")

    console.click_and_load(console.find("a.dlq-replay"), ready='input[type="submit"].default')
    submit = console.find('input[type="submit"].default')
    assert submit.get_attribute("value") == "Yes, replay"
    assert submit.is_enabled()
    assert str(letter.pk) in console.text("#content-main") or "upstream said no" in console.text(
        "#content-main"
    )
    console.screenshot("replay-confirmation")

    console.click_and_load(submit, ready="#dlq-executions")
    assert "replayed" in console.text(".messagelist").lower()
    letter.refresh_from_db()
    assert letter.resolution == Resolution.REPLAYED and letter.replay_execution_id
    replay = letter.replay_execution
    assert replay.parent_id == failed.pk
    rows = console.find_all("#dlq-executions tbody tr")
    replay_row = next(row for row in rows if "(replay)" in row.text)
    link = replay_row.find_element(By.TAG_NAME, "a")
    assert link.get_attribute("href").endswith(f"/admin/executions/execution/{replay.pk}/change/")
    console.screenshot("replayed")

    console.click_and_load(link, ready="#content-main")
    assert str(replay.pk) in console.driver.current_url
    assert str(failed.pk)[:8] in console.text("#content-main")  # the parent is linked
    console.screenshot("replay-execution")


def test_execution_page_shows_status_events_and_error(
    signed_in: Console, local_backend: Any
) -> None:
    failed, letter = failed_letter("boom <b>")
    console = signed_in
    console.open("/admin/executions/execution/", ready="#result_list")
    row_link = console.driver.find_element(By.PARTIAL_LINK_TEXT, str(failed.pk)[:8])
    console.screenshot("executions")
    assert console.columns_fit()  # "created" included, at 1366 px
    console.click_and_load(row_link, ready="#content-main")
    text = console.text("#content-main")
    assert console.find(".spine-badge-failed").is_displayed()
    assert "RuntimeError" in text and "boom <b>" in text  # escaped, shown as typed
    assert "Traceback" in text
    for event in ("queued", "running", "failed"):
        assert event in text, event
    dead_letter_link = console.driver.find_element(
        By.CSS_SELECTOR, f'a[href$="/admin/dlq/deadletter/{letter.pk}/change/"]'
    )
    assert dead_letter_link.is_displayed()
    console.screenshot("execution")
