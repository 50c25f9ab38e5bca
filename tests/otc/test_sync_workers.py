"""``otc sync`` on real Celery workers against the two-window fake FINRA.

The workers reach the fake over HTTP as they would reach api.finra.org and share
FINRA's rate limit through Redis; request times are taken where FINRA would see them.
"""

from __future__ import annotations

import io
from bisect import bisect_left

import pytest
from django.core.management import call_command

from executions.models import Execution, ExecutionStatus
from otc.models import Capture, CaptureState
from tests.otc.sync_support import (
    PAGE_SIZE,
    assert_archive_matches,
    fake_api,
    historic_weeks,
    recent_weeks,
)
from tests.support.celery_worker import WorkerFactory
from tests.support.fake_finra import HISTORIC, RECENT, FakeFinraAPI

__all__ = ["fake_api"]  # fixtures used here

pytestmark = [pytest.mark.celery_worker, pytest.mark.django_db(transaction=True)]

RPS = 4
#: The fake answers 429 past this many requests a second, as FINRA would.
FINRA_LIMIT = RPS


def worker_env(api: FakeFinraAPI, rps: int = 1000) -> dict[str, str]:
    return {
        "FINRA_API_BASE_URL": api.base_url,
        "FINRA_API_PAGE_SIZE": str(PAGE_SIZE),
        "FINRA_API_RPS": str(rps),
        "FINRA_API_MAX_RETRIES": "5",
        "FINRA_BREAKER_FAIL_MAX": "50",
    }


def sync(*args: str) -> str:
    out = io.StringIO()
    call_command("otc", "sync", *args, stdout=out)
    return out.getvalue()


def max_in_any_second(times: list[float], window: float = 1.0) -> int:
    """The most requests that arrived within any ``window`` seconds."""
    times = sorted(times)
    return max((bisect_left(times, t + window) - i for i, t in enumerate(times)), default=0)


def test_sync_on_workers_keeps_the_archive_complete_through_changes(
    fake_api: FakeFinraAPI, workers: WorkerFactory
) -> None:
    weeks = recent_weeks(2) + historic_weeks(2)
    for week in weeks:
        fake_api.publish(week, tiers=("T1", "T2"))
    keys = {(t, ats, w) for w in weeks for t in ("T1", "T2") for ats in (True, False)}
    fake_api.fail((429, "1"))  # FINRA's first answer: slow down
    workers(**worker_env(fake_api))

    out = sync("--tier", "T1", "--tier", "T2")

    assert "to fetch: 16 (16 missing, 0 changed)" in out and "0 failed" in out
    assert_archive_matches(fake_api, keys)
    assert {r.dataset for r in fake_api.data_requests()} >= {RECENT, HISTORIC}
    children = Execution.objects.filter(pipeline="otc.fetch_week")
    assert children.count() == 16 and {c.status for c in children} == {ExecutionStatus.SUCCEEDED}

    changed, vanished = weeks[2], weeks[3]
    fake_api.republish(changed, tier="T2", ats=False)
    fake_api.withdraw(vanished)
    old = Capture.objects.current().get(tier="T2", ats=False, week=changed)

    out = sync("--tier", "T1", "--tier", "T2")

    assert "to fetch: 1 (0 missing, 1 changed)" in out
    new = Capture.objects.current().get(tier="T2", ats=False, week=changed)
    old.refresh_from_db()
    assert new.pk != old.pk and old.state == CaptureState.SUPERSEDED
    assert old.superseded_by_id == new.pk
    served = fake_api.served_keys()
    assert {k for k in keys if k[2] == vanished}.isdisjoint(served)
    assert_archive_matches(fake_api, keys)  # the vanished week is still held, all 4 of it
    gone = Capture.objects.current().filter(week=vanished)
    assert gone.count() == 4 and not any(c.finra_served for c in gone)

    again = sync("--tier", "T1", "--tier", "T2")
    assert "nothing new" in again
    assert Execution.objects.filter(pipeline="otc.fetch_week").count() == 17


def test_two_workers_never_exceed_the_shared_rate_limit(
    fake_api: FakeFinraAPI, workers: WorkerFactory
) -> None:
    weeks = recent_weeks(4)
    for week in weeks:
        fake_api.publish(week, tiers=("T1", "OTCE"), symbols=4)
    fake_api.limit_rate(FINRA_LIMIT)  # over the limit, FINRA answers 429
    workers(**worker_env(fake_api, RPS))
    workers(**worker_env(fake_api, RPS))

    out = sync("--tier", "T1", "--tier", "OTC")

    assert "to fetch: 16" in out and "0 failed" in out
    requests = fake_api.data_requests()
    times = [r.at for r in requests]
    print(  # the figures behind docs/otc.md's rate-limit note
        f"{len(times)} requests in {times[-1] - times[0]:.1f}s, "
        f"at most {max_in_any_second(times)} in any second"
    )
    assert max_in_any_second(times) <= RPS, "the shared budget held across both workers"
    assert [r for r in requests if r.status == 429] == []
    span = times[-1] - times[0]
    assert len(times) / span > RPS / 2, "the workers used the budget, not a fraction of it"
    pids = {
        e.data["pid"]
        for child in Execution.objects.filter(pipeline="otc.fetch_week")
        for e in child.events.filter(type="started")
    }
    # Each worker runs two pool processes: more than two pids means both fetched.
    assert len(pids) > 2, f"fetches ran in processes {pids}"
