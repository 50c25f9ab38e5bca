"""``otc sync`` on the local backend against the two-window fake FINRA (tests/support).

The same behaviour on real Celery workers is in test_sync_workers.py.
"""

from __future__ import annotations

import io
from datetime import date, timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from executions.models import Execution, ExecutionStatus
from otc.finra import FinraClient
from otc.models import Capture, CaptureState
from otc.services.fetch import finra_client
from otc.services.sync import plan_sync
from tests.otc.sync_support import (
    assert_archive_matches,
    fake_api,
    historic_weeks,
    recent_weeks,
    sync_config,
    today,
)
from tests.support.fake_finra import HISTORIC, RECENT, FakeFinraAPI

__all__ = ["fake_api", "sync_config"]  # fixtures used here

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def sync(*args: str) -> str:
    out = io.StringIO()
    call_command("otc", "sync", *args, stdout=out)
    return out.getvalue()


def publish(api: FakeFinraAPI, weeks: list[date], tiers: tuple[str, ...]) -> set[Any]:
    for week in weeks:
        api.publish(week, tiers=tiers)
    return {
        ("OTC" if t == "OTCE" else t, ats, w) for w in weeks for t in tiers for ats in (True, False)
    }


def test_sync_fetches_each_dataset_week_once_from_both_windows(
    fake_api: FakeFinraAPI, sync_config: Any
) -> None:
    weeks = recent_weeks(2) + historic_weeks(2)
    keys = publish(fake_api, weeks, ("T1", "OTCE"))

    out = sync("--tier", "T1", "--tier", "OTC")

    assert "to fetch: 16 (16 missing, 0 changed)" in out
    assert "synced: 16 weeks fetched" in out and "0 failed" in out
    assert_archive_matches(fake_api, keys)
    datasets = {r.dataset for r in fake_api.data_requests() if r.method == "POST"}
    assert {RECENT, HISTORIC} <= datasets
    parent = Execution.objects.get(pipeline="otc.sync")
    assert parent.lane == "backfill" and parent.status == ExecutionStatus.SUCCEEDED
    children = Execution.objects.filter(parent=parent)
    assert children.count() == 16 and {c.lane for c in children} == {"backfill"}
    assert {c.status for c in children} == {ExecutionStatus.SUCCEEDED}
    assert all(c.finra_served for c in Capture.objects.all())


def test_second_sync_is_a_no_op_that_says_so(fake_api: FakeFinraAPI, sync_config: Any) -> None:
    publish(fake_api, recent_weeks(2), ("T2",))
    sync("--tier", "T2")
    captures = list(Capture.objects.values_list("pk", "checksum"))

    out = sync("--tier", "T2")

    assert "nothing new" in out and "to fetch: 0" in out
    assert list(Capture.objects.values_list("pk", "checksum")) == captures
    second = Execution.objects.filter(pipeline="otc.sync").order_by("-created_at").first()
    assert second is not None and not Execution.objects.filter(parent=second).exists()


def test_republished_week_becomes_a_new_capture_superseding_the_old(
    fake_api: FakeFinraAPI, sync_config: Any
) -> None:
    week = historic_weeks(1)[0]
    keys = publish(fake_api, [week], ("T1",))
    sync("--tier", "T1", "--ats")
    old = Capture.objects.get(tier="T1", ats=True, week=week)
    fake_api.republish(week, tier="T1", ats=True)

    out = sync("--tier", "T1", "--ats")

    assert "to fetch: 1 (0 missing, 1 changed)" in out
    new = Capture.objects.current().get(tier="T1", ats=True, week=week)
    old.refresh_from_db()
    assert new.pk != old.pk
    assert old.state == CaptureState.SUPERSEDED and old.superseded_by_id == new.pk
    assert_archive_matches(fake_api, {k for k in keys if k[1]})


def test_a_week_finra_stops_serving_stays_held_and_is_marked(
    fake_api: FakeFinraAPI, sync_config: Any, admin_client: Any
) -> None:
    weeks = historic_weeks(2)
    publish(fake_api, weeks, ("OTCE",))
    sync("--tier", "OTC", "--non-ats")
    gone = weeks[-1]
    fake_api.withdraw(gone)

    out = sync("--tier", "OTC", "--non-ats")

    assert "nothing new" in out and "1 weeks held are no longer served by FINRA" in out
    capture = Capture.objects.current().get(tier="OTC", ats=False, week=gone)
    assert capture.finra_served is False and capture.finra_last_seen == today()
    kept = Capture.objects.current().get(tier="OTC", ats=False, week=weeks[0])
    assert kept.finra_served is True
    weeks_out = io.StringIO()
    call_command("otc", "weeks", "--tier", "OTC", "--non-ats", stdout=weeks_out)
    assert f"{gone.isoformat()}  held (capture {capture.pk}), no longer served by FINRA" in (
        weeks_out.getvalue()
    )
    listed = admin_client.get("/api/v1/otc/weeks/", {"tier": "OTC", "ats": "false"}).json()
    marks = {r["week"]: (r["served_by_finra"], r["finra_last_seen"]) for r in listed["results"]}
    assert marks[gone.isoformat()] == (False, today().isoformat())
    assert marks[weeks[0].isoformat()] == (True, today().isoformat())
    changelist = admin_client.get("/admin/otc/capture/", {"finra_served__exact": "0"})
    assert changelist.status_code == 200
    assert f"no, last seen {today().isoformat()}" in changelist.content.decode()
    assert changelist.context["cl"].result_count == 1


def test_dry_run_lists_what_would_be_fetched_and_fetches_nothing(
    fake_api: FakeFinraAPI, sync_config: Any
) -> None:
    weeks = recent_weeks(3)
    publish(fake_api, weeks, ("T1",))

    out = sync("--tier", "T1", "--ats", "--dry-run", "--since", weeks[1].isoformat())

    assert "to fetch: 2 (2 missing, 0 changed)" in out
    assert f"T1  ATS     {weeks[1].isoformat()}  missing" in out
    assert weeks[2].isoformat() not in out
    assert Capture.objects.count() == 0
    assert not Execution.objects.filter(pipeline="otc.fetch_week").exists()


def test_children_are_dispatched_in_batches(fake_api: FakeFinraAPI, sync_config: Any) -> None:
    publish(fake_api, recent_weeks(5), ("T1",))

    sync("--tier", "T1", "--batch-size", "4")

    parent = Execution.objects.get(pipeline="otc.sync")
    batches = [e.data for e in parent.events.filter(type="children_dispatched").order_by("id")]
    assert [b["count"] for b in batches] == [4, 4, 2]
    assert [b["dispatched"] for b in batches] == [4, 8, 10]


def test_429s_with_retry_after_are_waited_out(fake_api: FakeFinraAPI, sync_config: Any) -> None:
    keys = publish(fake_api, recent_weeks(1), ("T2",))
    fake_api.fail((429, "0"), (429, "0"), (503, None))

    out = sync("--tier", "T2")

    assert "0 failed" in out
    assert [r.status for r in fake_api.data_requests()[:3]] == [429, 429, 503]
    assert_archive_matches(fake_api, keys)


def test_failed_fetch_exits_1_and_the_next_sync_picks_it_up(
    fake_api: FakeFinraAPI, sync_config: Any
) -> None:
    keys = publish(fake_api, recent_weeks(1), ("T1",))
    fake_api.fail(*[(500, None)] * 30)  # FINRA down for the first fetch's tries

    with pytest.raises(CommandError) as excinfo:
        sync("--tier", "T1", "--ats")
    assert excinfo.value.returncode == 1
    fake_api.fail_next.clear()

    sync("--tier", "T1", "--ats")
    assert_archive_matches(fake_api, {k for k in keys if k[1]})


# -- the client over both windows -----------------------------------------------------


def test_client_reads_old_weeks_from_the_historic_window_mapping_old_tier_names(
    fake_api: FakeFinraAPI, sync_config: Any
) -> None:
    week = historic_weeks(1, back_days=2 * 365)[0]
    fake_api.old_descriptions_before = week + timedelta(days=1)
    fake_api.publish(week, tiers=("T1",), ats=(True,))

    with finra_client() as client:
        rows = [
            r
            for page in client.iter_weekly_summary(
                week=week, tier="T1", summary_type="ATS_W_SMBL_FIRM"
            )
            for r in page
        ]

    assert rows and {r["tierDescription"] for r in rows} == {"Tier 1"}
    # The historic window filters by week and tier only: both summaries' rows, in 3 pages.
    assert [r.dataset for r in fake_api.data_requests()] == [HISTORIC] * 3
    sync("--tier", "T1", "--ats")
    capture = Capture.objects.current().get(tier="T1", ats=True, week=week)
    assert capture.reject_count == 0 and capture.row_count == len(rows)


def test_unfiltered_historic_query_is_the_oldest_week_and_get_ignores_filters(
    fake_api: FakeFinraAPI,
) -> None:
    import httpx

    weeks = historic_weeks(3)
    for week in weeks:
        fake_api.publish(week, tiers=("T1",), ats=(True,))
    url = f"{fake_api.base_url}/data/group/otcMarket/name/{HISTORIC}"
    body = {
        "compareFilters": [
            {
                "compareType": "EQUAL",
                "fieldName": "weekStartDate",
                "fieldValue": weeks[0].isoformat(),
            }
        ]
    }
    answered = httpx.post(url, json=body).json()
    assert {r["weekStartDate"] for r in answered} == {weeks[-1].isoformat()}
    assert {r["weekStartDate"] for r in httpx.get(url, params=body).json()} == {
        weeks[-1].isoformat()
    }
    refused = httpx.post(
        url,
        json={
            "compareFilters": [
                {"compareType": "EQUAL", "fieldName": "summaryTypeCode", "fieldValue": "ATS_W_SMBL"}
            ]
        },
    )
    assert refused.status_code == 400 and "not filterable" in refused.text


def test_published_weeks_lists_both_windows_with_last_update(fake_api: FakeFinraAPI) -> None:
    weeks = recent_weeks(2) + historic_weeks(2)
    for week in weeks:
        fake_api.publish(week, tiers=("T1",), ats=(False,))
    fake_api.page_headers = "capitalised"
    from tests.otc.sync_support import api_config

    with FinraClient(api_config(fake_api)) as client:
        listed = client.published_weeks(tier="T1", summary_type="OTC_W_SMBL_FIRM")
        plan = plan_sync(client, tiers=["T1"], kinds="non_ats", today=today())

    assert [p.week for p in listed] == sorted(weeks, reverse=True)
    assert all(p.last_update == p.week + timedelta(days=14) for p in listed)
    assert plan.missing == 4 and plan.published == {"T1 non-ATS": 4}


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_progress_is_a_bar_redrawn_in_place(
    fake_api: FakeFinraAPI, sync_config: Any
) -> None:
    publish(fake_api, recent_weeks(2), ("T1",))
    out = _Terminal()

    call_command("otc", "sync", "--tier", "T1", stdout=out)

    text = out.getvalue()
    assert "\r[" + "#" * 30 + "]  4/4 weeks" in text
    assert "rows/s), ETA 00:00, 0 failed" in text
    assert "synced: 4 weeks fetched" in text


def test_the_admin_runs_a_sync_with_the_same_params(
    fake_api: FakeFinraAPI, sync_config: Any, admin_client: Any
) -> None:
    from django.urls import reverse

    keys = publish(fake_api, recent_weeks(1), ("T2",))
    run = reverse("admin:executions_execution_run")
    form = admin_client.get(run, {"pipeline": "otc.sync"}).content.decode()
    for name in ("tiers", "kinds", "since", "dry_run", "batch_size"):
        assert f'name="params-{name}"' in form, name

    response = admin_client.post(
        run,
        {
            "pipeline": "otc.sync",
            "params-tiers": '["T2"]',
            "params-kinds": "non_ats",
            "params-since": "",
            "params-batch_size": "50",
            "run-lane": "",
        },
    )

    parent = Execution.objects.get(pipeline="otc.sync")
    assert response.status_code == 302, response.content.decode()[:2000]
    assert parent.params["tiers"] == ["T2"] and parent.params["kinds"] == "non_ats"
    assert parent.status == ExecutionStatus.SUCCEEDED
    assert_archive_matches(fake_api, {k for k in keys if not k[1]})


def test_a_stopped_sync_leaves_nothing_half_done_and_the_next_one_finishes(
    fake_api: FakeFinraAPI, sync_config: Any, settings: Any
) -> None:
    from executions.dispatcher import dispatch
    from executions.runner import run_pipeline
    from otc.cli.sync import stop

    keys = publish(fake_api, recent_weeks(3), ("T1",))
    settings.EXECUTION_BACKEND = "stub"  # the broker takes the children; no worker runs them
    parent = dispatch("otc.sync", {"tiers": ["T1"]}, trigger_source="cli")
    run_pipeline(parent.pk)
    parent.refresh_from_db()
    children = Execution.objects.filter(parent=parent)
    assert parent.status == ExecutionStatus.SUCCEEDED and children.count() == 6
    assert {c.status for c in children} == {ExecutionStatus.QUEUED}
    with finra_client() as client:
        busy = plan_sync(client, tiers=["T1"], today=today())
    assert busy.items == [] and len(busy.in_flight) == 6, "queued fetches are not planned twice"

    assert stop(parent) == 6  # what Ctrl-C in otc sync does
    assert {c.status for c in children.all()} == {ExecutionStatus.CANCELLED}
    assert Capture.objects.count() == 0

    settings.EXECUTION_BACKEND = "local"
    out = sync("--tier", "T1")
    assert "to fetch: 6 (6 missing, 0 changed)" in out and "0 failed" in out
    assert_archive_matches(fake_api, keys)


def test_the_beat_tick_runs_the_tier_sync_and_its_fetches_go_to_the_broker(
    fake_api: FakeFinraAPI, sync_config: Any, settings: Any
) -> None:
    from ops.schedules import SCHEDULES
    from ops.tasks import run_scheduled

    publish(fake_api, recent_weeks(1), ("T2",))
    spec = next(s for s in SCHEDULES if s.key == "otc sync T2")
    settings.EXECUTION_BACKEND = "stub"  # production's broker: the tick itself runs inline

    tick = Execution.objects.get(pk=run_scheduled(spec.pipeline, spec.params))

    assert tick.status == ExecutionStatus.SUCCEEDED, tick.error
    assert tick.trigger_source == "schedule" and tick.result["to_fetch"] == 2
    children = Execution.objects.filter(parent=tick)
    assert {(c.params["tier"], c.params["ats"]) for c in children} == {("T2", True), ("T2", False)}
    assert {c.status for c in children} == {ExecutionStatus.QUEUED}
    assert {c.trigger_source for c in children} == {"schedule"}
