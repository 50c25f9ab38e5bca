"""Fixtures and helpers for the ``otc sync`` tests: the two-window fake FINRA and clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

import otc.services.fetch
from otc.finra import FinraClient, FinraClientConfig, build_breaker, process_rate_limiter
from otc.models import Capture
from otc.selectors import venue_volumes
from otc.weeks import week_start
from spine.time import utc_now
from tests.support.fake_finra import FakeFinraAPI

PAGE_SIZE = 10


def today() -> date:
    return utc_now().date()


def recent_weeks(count: int, *, back: int = 6) -> list[date]:
    """``count`` Mondays inside weeklySummary's 12 months, from ``back`` weeks ago."""
    newest = week_start(today()) - timedelta(weeks=back)
    return [newest - timedelta(weeks=n) for n in range(count)]


def historic_weeks(count: int, *, back_days: int = 500) -> list[date]:
    """``count`` Mondays of weeklySummaryHistoric (over a year and a month old)."""
    newest = week_start(today() - timedelta(days=back_days))
    return [newest - timedelta(weeks=n) for n in range(count)]


@pytest.fixture
def fake_api() -> Iterator[FakeFinraAPI]:
    api = FakeFinraAPI(today=today()).start()
    yield api
    api.stop()


def api_config(api: FakeFinraAPI, **overrides: Any) -> FinraClientConfig:
    settings: dict[str, Any] = {
        "base_url": api.base_url,
        "read_timeout": 10.0,
        "page_size": PAGE_SIZE,
        "max_retries": 3,
        "backoff_base": 0.05,
        "backoff_max": 2.0,
        "requests_per_second": 1000.0,
    }
    return FinraClientConfig(**{**settings, **overrides})


@pytest.fixture
def sync_config(settings: Any, fake_api: FakeFinraAPI, monkeypatch: Any) -> FinraClientConfig:
    """The local backend, FINRA on the fake, clients with this test's breaker."""
    config = api_config(fake_api)
    settings.FINRA_CLIENT = config
    settings.EXECUTION_BACKEND = "local"
    breaker = build_breaker(fail_max=5, reset_timeout=60)

    def client() -> FinraClient:
        return FinraClient(config, breaker=breaker, rate_limiter=process_rate_limiter(1000.0))

    monkeypatch.setattr(otc.services.fetch, "finra_client", client)
    return config


def held_rows(tier: str, week: date, ats: bool) -> list[tuple[str, str, int, int]]:
    """The current capture's venue rows: (symbol, MPID, shares, trades), sorted."""
    rows = venue_volumes(tier=tier, week=week, ats=ats).values_list(
        "symbol", "mpid", "share_volume", "trade_count"
    )
    return sorted(rows)


def finra_rows(
    api: FakeFinraAPI, tier: str, week: date, ats: bool
) -> list[tuple[str, str, int, int]]:
    return sorted(
        (
            r["issueSymbolIdentifier"],
            r["MPID"],
            r["totalWeeklyShareQuantity"],
            r["totalWeeklyTradeCount"],
        )
        for r in api.rows(week, tier=tier, ats=ats)
    )


def assert_archive_matches(api: FakeFinraAPI, keys: set[tuple[str, bool, date]]) -> None:
    """Every (tier, ats, week) is held by exactly one current capture with FINRA's rows."""
    current = Capture.objects.current()
    held = sorted((c.tier, c.ats, c.week) for c in current)
    assert held == sorted(keys), "one current capture per (dataset, week), no more"
    for tier, ats, week in keys:
        assert held_rows(tier, week, ats) == finra_rows(api, tier, week, ats), (tier, ats, week)
