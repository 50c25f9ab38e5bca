"""The OTC analytics API on real and generated data: numbers, parameters, errors, auth,
pagination, ordering, point-in-time reads and query counts.

Data (see ``otc_data``): the real FINRA OTC week of 2025-12-15, eight generated T1
weeks, and a T2 week corrected once. Loaded once for the module.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from django.db.models import Sum
from rest_framework import serializers
from rest_framework.test import APIClient

from otc import selectors
from otc.api import SYMBOL_ROW, VENUE_ROW, WeekListMixin
from otc.models import Capture, SymbolWeekSummary, VenueMarketShare
from otc.serializers import SymbolSummarySerializer, SymbolVenueSerializer, VenueShareSerializer
from spine.time import format_iso
from tests.api.conftest import assert_error
from tests.api.otc_data import (
    CORRECTED_WEEK,
    REAL_WEEK,
    T1_LAST,
    T1_START,
    T1_WEEKS,
    OtcData,
    loaded,
)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

API = "/api/v1/otc"
REAL_TOTAL = 1_335_995_901
REAL_SYMBOLS = 3111
Q4 = Decimal("0.0001")
#: Token lookup + the page with its total (+ the latest-week lookup when no week is given).
MAX_QUERIES = 3


@pytest.fixture(scope="module")
def otc(django_db_setup: None, django_db_blocker: Any, real_otc_file: Path) -> Iterator[OtcData]:
    yield from loaded(django_db_blocker, real_otc_file)


@pytest.fixture
def api(otc: OtcData, reader_client: APIClient) -> APIClient:
    return reader_client


def get(client: APIClient, path: str, **params: Any) -> dict[str, Any]:
    response = client.get(f"{API}/{path}", params)
    assert response.status_code == 200, (response.status_code, response.content[:500])
    return json.loads(response.content)


def pct(part: int, whole: int) -> str:
    return str((Decimal(part) * 100 / whole).quantize(Q4, ROUND_HALF_UP))


def t1_symbol(otc: OtcData) -> str:
    """A T1 symbol present in every generated week."""
    counts = (
        SymbolWeekSummary.objects.filter(capture_id__in=otc.t1_captures)
        .values("symbol")
        .annotate(total=Sum("total_volume"))
        .order_by("-total")
    )
    for entry in counts:
        weeks = SymbolWeekSummary.objects.filter(
            capture_id__in=otc.t1_captures, symbol=entry["symbol"]
        ).count()
        if weeks == T1_WEEKS:
            return entry["symbol"]
    raise AssertionError("no T1 symbol in every week")


def t1_venue(otc: OtcData) -> str:
    return VenueMarketShare.objects.get(capture_id=otc.t1_captures[-1], rank=1).mpid


# --- auth, methods ----------------------------------------------------------------------

ENDPOINTS = [
    "weeks/",
    "symbols/?tier=OTC&ats=true",
    "symbols/AABB/weekly/",
    "symbols/AABB/venues/?ats=true",
    "symbols/AABB/rolling/?ats=true",
    "venues/?tier=OTC&ats=true",
    "venues/OTCN/",
    "quality/",
    "captures/",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_reads_need_authentication(otc: OtcData, anon_client: APIClient, path: str) -> None:
    response = anon_client.get(f"{API}/{path}")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"] == "Token"
    bad = APIClient()
    bad.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert_error(bad.get(f"{API}/{path}"), 401, "authentication_failed")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_public_read_opens_reads(
    otc: OtcData, anon_client: APIClient, settings: Any, path: str
) -> None:
    settings.SPINE_PUBLIC_READ = True
    response = anon_client.get(f"{API}/{path}")
    assert response.status_code == 200, response.content[:300]
    assert "X-RateLimit-Limit" in response


@pytest.mark.parametrize("path", ["weeks/", "symbols/", "venues/", "captures/1/"])
def test_writes_are_not_allowed(api: APIClient, path: str) -> None:
    assert_error(api.post(f"{API}/{path}", {}), 405, "method_not_allowed")
    assert_error(api.delete(f"{API}/{path}"), 405, "method_not_allowed")


# --- weeks ------------------------------------------------------------------------------


def test_weeks_held_per_tier_with_capture_and_grade(api: APIClient, otc: OtcData) -> None:
    body = get(api, "weeks/")
    assert body["count"] == 1 + T1_WEEKS + 1
    assert [r["week"] for r in body["results"]] == sorted(
        (r["week"] for r in body["results"]), reverse=True
    )
    otc_week = get(api, "weeks/", tier="OTCE", ats="true")["results"]
    assert len(otc_week) == 1
    real = otc_week[0]
    capture = Capture.objects.get(pk=otc.real_capture)
    assert real["week"] == "2025-12-15"
    assert real["capture"] == otc.real_capture
    assert real["grade"] == capture.quality_grade and real["grade"] in "ABCD"
    assert real["rows"] == 5328 and real["rejects"] == 0 and real["ats"] is True
    t1 = get(api, "weeks/", tier="t1")["results"]
    assert [r["week"] for r in t1] == [
        (T1_LAST - timedelta(weeks=n)).isoformat() for n in range(T1_WEEKS)
    ]
    # ATS and non-ATS are kept apart: the real week is the one ATS week held.
    assert [r["capture"] for r in get(api, "weeks/", ats="true")["results"]] == [otc.real_capture]
    assert get(api, "weeks/", ats="false")["count"] == T1_WEEKS + 1


def test_weeks_as_of_answers_with_the_capture_known_then(api: APIClient, otc: OtcData) -> None:
    (now,) = get(api, "weeks/", tier="T2")["results"]
    assert now["capture"] == otc.t2_corrected
    (then,) = get(api, "weeks/", tier="T2", as_of=format_iso(otc.before_correction))["results"]
    assert then["capture"] == otc.t2_original
    assert get(api, "weeks/", as_of="2000-01-01T00:00:00Z")["count"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"tier": "T3"}, "tier"),
        ({"ats": "maybe"}, "ats"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"as_of": "2025-13-45T00:00:00Z"}, "as_of"),
    ],
)
def test_weeks_bad_params(api: APIClient, params: dict[str, str], field: str) -> None:
    error = assert_error(api.get(f"{API}/weeks/", params), 400, "validation_error")
    assert field in error["details"], error


# --- symbols ----------------------------------------------------------------------------


def test_symbols_of_the_real_week(api: APIClient, otc: OtcData) -> None:
    body = get(api, "symbols/", tier="OTC", ats="true", week="2025-12-15", page_size=500)
    assert body["count"] == REAL_SYMBOLS
    volumes = [r["total_volume"] for r in body["results"]]
    assert all(isinstance(v, int) for v in volumes)
    assert volumes == sorted(volumes, reverse=True)
    top = SymbolWeekSummary.objects.filter(capture_id=otc.real_capture).order_by(
        "-total_volume", "symbol"
    )[0]
    assert body["results"][0]["symbol"] == top.symbol
    assert body["results"][0]["total_volume"] == top.total_volume


def test_symbol_summary_numbers_are_the_hand_computed_ones(api: APIClient) -> None:
    # AABB in FINRA's file: OTCN 6,753,871 shares / 171 trades, OTCX 40,313 / 3.
    (aabb,) = get(api, "symbols/", tier="OTC", ats="true", week="2025-12-17", search="AABB")[
        "results"
    ]
    total = 6_753_871 + 40_313
    assert aabb["week"] == "2025-12-15"  # any date in the week → its Monday
    assert aabb["total_volume"] == total
    assert aabb["total_trades"] == 174
    assert aabb["venue_count"] == 2
    assert aabb["avg_trade_size"] == str((Decimal(total) / 174).quantize(Q4, ROUND_HALF_UP))
    assert aabb["top_venue_mpid"] == "OTCN"
    top, other = Decimal(pct(6_753_871, total)), Decimal(pct(40_313, total))
    assert aabb["top_venue_share"] == str(top)
    assert aabb["hhi"] == str((top * top + other * other).quantize(Q4, ROUND_HALF_UP))
    assert aabb["concentration"] == "concentrated"
    assert aabb["issue_name"] == "Asia Broadband Inc Common Stock"
    assert aabb["tier"] == "OTC" and aabb["ats"] is True


def test_symbols_default_to_the_latest_week_held(api: APIClient, otc: OtcData) -> None:
    body = get(api, "symbols/", tier="OTC", ats="true", page_size=1)
    assert body["count"] == REAL_SYMBOLS
    assert body["results"][0]["week"] == REAL_WEEK.isoformat()
    t1 = get(api, "symbols/", tier="T1", page_size=1)
    assert t1["results"][0]["week"] == T1_LAST.isoformat()


def test_symbols_search_by_issue_name(api: APIClient) -> None:
    body = get(api, "symbols/", tier="OTC", ats="true", week="2025-12-15", search="asia broadband")
    assert [r["symbol"] for r in body["results"]] == ["AABB"]


def test_symbols_ordering_and_pagination(api: APIClient, otc: OtcData) -> None:
    first = get(api, "symbols/", tier="OTC", ats="true", week="2025-12-15", ordering="-hhi,symbol")
    hhis = [Decimal(r["hhi"]) for r in first["results"] if r["hhi"] is not None]
    assert hhis == sorted(hhis, reverse=True)
    by_symbol = get(
        api, "symbols/", tier="OTC", ats="true", week="2025-12-15", ordering="symbol", page_size=7
    )
    assert len(by_symbol["results"]) == 7 and by_symbol["count"] == REAL_SYMBOLS
    assert "page=2" in by_symbol["next"] and by_symbol["previous"] is None
    page2 = get(
        api,
        "symbols/",
        tier="OTC",
        ats="true",
        week="2025-12-15",
        ordering="symbol",
        page_size=7,
        page=2,
    )
    symbols = [r["symbol"] for r in by_symbol["results"] + page2["results"]]
    assert symbols == sorted(symbols) and len(set(symbols)) == 14
    # Ties on venue_count are broken by symbol, so pages never overlap.
    a = get(
        api,
        "symbols/",
        tier="OTC",
        ats="true",
        week="2025-12-15",
        ordering="venue_count",
        page_size=50,
    )
    b = get(
        api,
        "symbols/",
        tier="OTC",
        ats="true",
        week="2025-12-15",
        ordering="venue_count",
        page_size=50,
        page=2,
    )
    assert not {r["symbol"] for r in a["results"]} & {r["symbol"] for r in b["results"]}
    past_end = api.get(
        f"{API}/symbols/", {"tier": "OTC", "ats": "true", "week": "2025-12-15", "page": 999}
    )
    assert_error(past_end, 404, "not_found")
    for page in (0, "x"):  # not a page number at all: a 400 naming the parameter
        response = api.get(
            f"{API}/symbols/", {"tier": "OTC", "ats": "true", "week": "2025-12-15", "page": page}
        )
        assert "page" in assert_error(response, 400, "validation_error")["details"]
    last = get(api, "symbols/", tier="OTC", ats="true", week="2025-12-15", page_size=500, page=7)
    assert last["count"] == REAL_SYMBOLS and len(last["results"]) == REAL_SYMBOLS - 6 * 500
    assert last["next"] is None and "page=6" in last["previous"]


def test_symbols_unknown_sort_field_names_the_allowed(api: APIClient) -> None:
    response = api.get(f"{API}/symbols/", {"tier": "OTC", "ats": "true", "ordering": "-price"})
    error = assert_error(response, 400, "validation_error")
    message = error["details"]["ordering"][0]
    assert "price" in message
    for allowed in ("symbol", "total_volume", "hhi", "venue_count", "top_venue_share"):
        assert allowed in message


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"week": "2025-02-30"}, "week"),
        ({"week": "last week"}, "week"),
        ({"tier": "NMS"}, "tier"),
        ({"as_of": "2025-12-15T25:00:00"}, "as_of"),
        ({"search": "x" * 101}, "search"),
    ],
)
def test_symbols_bad_params(api: APIClient, params: dict[str, str], field: str) -> None:
    error = assert_error(api.get(f"{API}/symbols/", params), 400, "validation_error")
    assert field in error["details"]


def test_symbols_with_nothing_held_is_404(api: APIClient) -> None:
    error = assert_error(
        api.get(f"{API}/symbols/", {"ats": "true", "tier": "T1"}), 404, "not_found"
    )
    assert error["details"]["ats"] == "True"


def test_symbols_as_of_reproduces_the_numbers_before_the_correction(
    api: APIClient, otc: OtcData
) -> None:
    params = {"tier": "T2", "week": CORRECTED_WEEK.isoformat(), "search": "ZZTA"}
    (now,) = get(api, "symbols/", **params)["results"]
    assert now["hhi"] == "5000.0000" and now["top_venue_share"] == "50.0000"
    assert now["capture"] == otc.t2_corrected and now["concentration"] == "concentrated"
    (then,) = get(api, "symbols/", **params, as_of=format_iso(otc.before_correction))["results"]
    assert then["hhi"] == "5200.0000" and then["top_venue_share"] == "60.0000"
    assert then["capture"] == otc.t2_original
    assert then["total_volume"] == now["total_volume"] == 1000


# --- one symbol: weekly, venues, rolling -------------------------------------------------


def test_symbol_weekly_over_a_range(api: APIClient, otc: OtcData) -> None:
    symbol = t1_symbol(otc)
    body = get(api, f"symbols/{symbol.lower()}/weekly/", tier="T1")
    assert body["count"] == T1_WEEKS
    weeks = [r["week"] for r in body["results"]]
    assert weeks == [(T1_START + timedelta(weeks=n)).isoformat() for n in range(T1_WEEKS)]
    expected = SymbolWeekSummary.objects.filter(capture_id__in=otc.t1_captures, symbol=symbol)
    assert (
        sum(r["total_volume"] for r in body["results"])
        == expected.aggregate(v=Sum("total_volume"))["v"]
    )
    middle = get(
        api,
        f"symbols/{symbol}/weekly/",
        **{"from": (T1_START + timedelta(days=8)).isoformat(), "to": T1_START + timedelta(weeks=3)},
    )
    assert [r["week"] for r in middle["results"]] == weeks[1:4]
    paged = get(api, f"symbols/{symbol}/weekly/", page_size=3, page=3)
    assert [r["week"] for r in paged["results"]] == weeks[6:]


def test_symbol_weekly_errors(api: APIClient, otc: OtcData) -> None:
    symbol = t1_symbol(otc)
    # An inverted range holds no weeks: empty, as any range without data.
    inverted = get(api, f"symbols/{symbol}/weekly/", **{"from": "2025-11-20", "to": "2025-11-01"})
    assert inverted["count"] == 0 and inverted["results"] == []
    error = assert_error(
        api.get(f"{API}/symbols/{symbol}/weekly/", {"to": "2025-99-01"}), 400, "validation_error"
    )
    assert "to" in error["details"]
    error = assert_error(api.get(f"{API}/symbols/NOPE1/weekly/"), 404, "not_found")
    assert error["details"] == {"symbol": "NOPE1"}
    # A known symbol outside its range: an empty list, not a 404.
    assert get(api, f"symbols/{symbol}/weekly/", to="2020-01-01")["count"] == 0


def test_symbol_venue_breakdown_of_the_real_week(api: APIClient, otc: OtcData) -> None:
    body = get(api, "symbols/AABB/venues/", week="2025-12-15", ats="true")
    assert body["symbol"] == "AABB" and body["tier"] == "OTC" and body["week"] == "2025-12-15"
    assert body["capture"] == otc.real_capture
    assert body["total_volume"] == 6_794_184 and body["total_trades"] == 174
    assert [(v["mpid"], v["share_volume"], v["trade_count"]) for v in body["venues"]] == [
        ("OTCN", 6_753_871, 171),
        ("OTCX", 40_313, 3),
    ]
    assert body["venues"][0]["share"] == pct(6_753_871, 6_794_184)
    assert abs(sum(Decimal(v["share"]) for v in body["venues"]) - 100) <= Decimal("0.0002")
    # Defaults to the symbol's latest week.
    assert get(api, "symbols/AABB/venues/", ats="true")["week"] == "2025-12-15"


def test_symbol_venue_shares_sum_to_100_for_every_t1_symbol_sampled(
    api: APIClient, otc: OtcData
) -> None:
    symbols = SymbolWeekSummary.objects.filter(capture_id=otc.t1_captures[-1]).order_by(
        "-venue_count", "symbol"
    )[:5]
    for summary in symbols:
        body = get(api, f"symbols/{summary.symbol}/venues/", tier="T1", week=T1_LAST)
        shares = [Decimal(v["share"]) for v in body["venues"]]
        assert abs(sum(shares) - 100) <= Q4 * len(shares) / 2
        assert body["venue_count"] == summary.venue_count == len(shares)
        assert body["total_volume"] == summary.total_volume
        assert str(max(shares)) == str(summary.top_venue_share)


def test_symbol_in_two_tiers_needs_a_tier(api: APIClient, otc: OtcData) -> None:
    path = f"{API}/symbols/{otc.shared_symbol}/venues/"
    error = assert_error(api.get(path, {"week": T1_LAST}), 400, "validation_error")
    assert "T1, T2" in error["details"]["tier"][0]
    assert get(api, f"symbols/{otc.shared_symbol}/venues/", week=T1_LAST, tier="T2")["venues"][
        0
    ] == {
        "mpid": "VNUB",
        "venue_name": "VNUB VENUE",
        "share_volume": 100,
        "trade_count": 1,
        "avg_trade_size": "100.0000",
        "share": "100.0000",
    }


def test_symbol_venues_errors(api: APIClient) -> None:
    error = assert_error(api.get(f"{API}/symbols/NOPE1/venues/"), 404, "not_found")
    assert error["details"] == {"symbol": "NOPE1"}
    error = assert_error(
        api.get(f"{API}/symbols/AABB/venues/", {"week": "2025-01-01"}), 404, "not_found"
    )
    assert error["details"]["week"] == "2024-12-30"
    assert_error(api.get(f"{API}/symbols/AABB/venues/", {"tier": "X"}), 400, "validation_error")
    assert_error(api.get(f"{API}/symbols/{'A' * 40}/venues/"), 404, "not_found")


def test_symbol_rolling_window(api: APIClient, otc: OtcData) -> None:
    symbol = t1_symbol(otc)
    body = get(api, f"symbols/{symbol}/rolling/", tier="T1", week=T1_LAST)
    assert body["week"] == T1_LAST.isoformat()
    assert body["window_start"] == (T1_LAST - timedelta(weeks=5)).isoformat()
    assert body["weeks_in_window"] == 6
    volumes = [
        s.total_volume
        for s in SymbolWeekSummary.objects.filter(
            capture_id__in=otc.t1_captures, symbol=symbol, week__gte=T1_LAST - timedelta(weeks=5)
        ).order_by("week")
    ]
    assert body["current_volume"] == volumes[-1]
    assert body["window_volume"] == sum(volumes)
    assert body["avg_volume"] == str((Decimal(sum(volumes)) / 6).quantize(Q4, ROUND_HALF_UP))
    earlier = Decimal(sum(volumes[:-1])) / 5
    expected = (
        "up"
        if volumes[-1] > earlier * Decimal("1.1")
        else "down"
        if volumes[-1] < earlier * Decimal("0.9")
        else "stable"
    )
    assert body["trend"] == expected
    first = get(api, f"symbols/{symbol}/rolling/", tier="T1", week=T1_START)
    assert first["weeks_in_window"] == 1 and first["trend"] is None
    assert get(api, f"symbols/{symbol}/rolling/")["week"] == T1_LAST.isoformat()


def test_symbol_rolling_errors_and_as_of(api: APIClient, otc: OtcData) -> None:
    assert_error(api.get(f"{API}/symbols/NOPE1/rolling/"), 404, "not_found")
    assert_error(api.get(f"{API}/symbols/AABB/rolling/", {"week": "2025-12-08"}), 404, "not_found")
    assert_error(
        api.get(f"{API}/symbols/AABB/rolling/", {"as_of": "noon"}), 400, "validation_error"
    )
    params = {"tier": "T2", "week": CORRECTED_WEEK}
    assert get(api, "symbols/ZZTA/rolling/", **params)["capture"] == otc.t2_corrected
    then = get(api, "symbols/ZZTA/rolling/", **params, as_of=format_iso(otc.before_correction))
    assert then["capture"] == otc.t2_original and then["current_volume"] == 1000


# --- venues -----------------------------------------------------------------------------


def test_venues_of_the_real_week(api: APIClient, otc: OtcData) -> None:
    body = get(api, "venues/", tier="OTC", ats="true", week="2025-12-15")
    assert body["count"] == 9
    rows = body["results"]
    assert [r["rank"] for r in rows] == sorted(r["rank"] for r in rows)
    assert rows[0]["mpid"] == "OTCN"
    assert sum(r["total_volume"] for r in rows) == REAL_TOTAL
    assert abs(sum(Decimal(r["market_share"]) for r in rows) - 100) <= Decimal("0.001")
    otcn = VenueMarketShare.objects.get(capture_id=otc.real_capture, mpid="OTCN")
    assert rows[0]["total_volume"] == otcn.total_volume
    assert rows[0]["market_share"] == pct(otcn.total_volume, REAL_TOTAL)
    assert rows[0]["symbol_count"] == 2300
    # One OTC week held: a window of one week has no trend.
    assert rows[0]["weeks_in_window"] == 1 and rows[0]["trend"] is None


def test_venues_have_rolling_trends(api: APIClient, otc: OtcData) -> None:
    rows = get(api, "venues/", tier="T1", week=T1_LAST)["results"]
    assert rows and all(r["weeks_in_window"] == 6 for r in rows if r["rank"] <= 3)
    assert {r["trend"] for r in rows} <= {"up", "down", "stable"}
    assert all(Decimal(r["rolling_avg_volume"]) > 0 for r in rows)


@pytest.mark.parametrize(
    ("sort", "key", "reverse"),
    [
        ("-volume", "total_volume", True),
        ("volume", "total_volume", False),
        ("-share", "market_share", True),
        ("symbol_count", "symbol_count", False),
        ("-rank", "rank", True),
    ],
)
def test_venues_sort(api: APIClient, sort: str, key: str, reverse: bool) -> None:
    rows = get(api, "venues/", tier="OTC", ats="true", week="2025-12-15", sort=sort)["results"]
    values = [Decimal(str(r[key])) for r in rows]
    assert values == sorted(values, reverse=reverse)


def test_venues_unknown_sort_names_the_allowed(api: APIClient) -> None:
    response = api.get(f"{API}/venues/", {"tier": "OTC", "ats": "true", "sort": "name"})
    error = assert_error(response, 400, "validation_error")
    message = error["details"]["sort"][0]
    assert "name" in message
    for allowed in ("volume", "share", "symbol_count", "rank"):
        assert allowed in message


@pytest.mark.parametrize(
    "query",
    [
        "symbols/?tier=OTC&ats=true&week=2025-12-15",
        "symbols/?tier=OTC&ats=true&week=2025-12-15&ordering=-hhi,venue_count&page_size=7&page=3",
        "symbols/?tier=OTC&ats=true&week=2025-12-15&ordering=top_venue_share&page_size=500&page=7",
        "symbols/?tier=OTC&ats=true&week=2025-12-15&page=last&page_size=100",
        "symbols/?tier=OTC&ats=true&week=2025-12-15&page=999",
        "symbols/?tier=OTC&ats=true&week=2025-12-15&page=x",
        "symbols/?tier=OTC&ats=true&week=2025-12-15&ordering=-price",
        "symbols/?tier=T1&ordering=symbol",
        f"symbols/?tier=T2&week={CORRECTED_WEEK}",
        "symbols/?tier=T1&week=2001-01-01",
        "symbols/?tier=T1&ats=true",
        "venues/?tier=OTC&ats=true&week=2025-12-15",
        "venues/?tier=OTC&ats=true&week=2025-12-15&sort=-share&page_size=2&page=2",
        "venues/?tier=T1&sort=-volume",
        f"venues/?tier=T1&week={T1_LAST}&sort=symbol_count",
        "venues/?tier=T1&sort=name",
        "venues/?tier=OTC&ats=true&page=0",
    ],
)
def test_week_lists_answer_as_the_queryset_path(
    api: APIClient, query: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The precompiled week pages (one tier, now) answer exactly what the queryset path
    answers: bodies, statuses, totals, links and errors."""
    sources: list[Any] = []
    precompiled = WeekListMixin.week_page_source

    def recorded(self: WeekListMixin, request: Any) -> Any:
        sources.append(precompiled(self, request))
        return sources[-1]

    monkeypatch.setattr(WeekListMixin, "week_page_source", recorded)
    fast = api.get(f"{API}/{query}")
    assert fast.status_code != 200 or sources[-1] is not None  # the precompiled path ran
    monkeypatch.setattr(WeekListMixin, "week_page_source", lambda self, request: None)
    slow = api.get(f"{API}/{query}")
    assert (fast.status_code, fast.content) == (slow.status_code, slow.content)


def test_venues_as_of_before_the_correction(api: APIClient, otc: OtcData) -> None:
    params = {"tier": "T2", "week": CORRECTED_WEEK, "sort": "mpid"}
    now = {r["mpid"]: r["total_volume"] for r in get(api, "venues/", **params)["results"]}
    assert now == {"VNUA": 800, "VNUB": 600}
    then = get(api, "venues/", **params, as_of=format_iso(otc.before_correction))["results"]
    assert {r["mpid"]: r["total_volume"] for r in then} == {"VNUA": 900, "VNUB": 500}


def test_venue_history(api: APIClient, otc: OtcData) -> None:
    mpid = t1_venue(otc)
    body = get(api, f"venues/{mpid.lower()}/", tier="T1")
    assert body["count"] == T1_WEEKS
    assert [r["week"] for r in body["results"]] == [
        (T1_START + timedelta(weeks=n)).isoformat() for n in range(T1_WEEKS)
    ]
    expected = VenueMarketShare.objects.filter(capture_id__in=otc.t1_captures, mpid=mpid)
    assert {r["week"]: r["total_volume"] for r in body["results"]} == {
        s.week.isoformat(): s.total_volume for s in expected
    }
    last = body["results"][-1]
    assert last["weeks_in_window"] == 6 and last["trend"] in {"up", "down", "stable"}
    ranged = get(
        api,
        f"venues/{mpid}/",
        tier="T1",
        **{"from": T1_LAST + timedelta(days=2), "to": T1_LAST + timedelta(days=6)},
    )
    assert [r["week"] for r in ranged["results"]] == [T1_LAST.isoformat()]


def test_venue_history_errors(api: APIClient, otc: OtcData) -> None:
    error = assert_error(api.get(f"{API}/venues/NOPE/"), 404, "not_found")
    assert error["details"] == {"mpid": "NOPE"}
    inverted = get(api, "venues/OTCN/", **{"from": "2025-12-15", "to": "2025-12-01"})
    assert inverted["count"] == 0 and inverted["results"] == []
    assert get(api, "venues/OTCN/", to="2020-01-06")["count"] == 0
    assert_error(api.get(f"{API}/venues/OTCN/", {"tier": "OTCX"}), 400, "validation_error")


# --- quality ----------------------------------------------------------------------------


def test_quality_report_of_the_real_week(api: APIClient, otc: OtcData) -> None:
    (report,) = get(api, "quality/", tier="OTC", ats="true", week="2025-12-19")["results"]
    assert report["week"] == "2025-12-15" and report["capture"] == otc.real_capture
    assert report["grade"] in "ABCD" and report["failures"] == []
    assert report["metrics"]["total_volume"] == REAL_TOTAL
    assert report["metrics"]["rows"] == 5328 and report["metrics"]["venues"] == 9
    assert isinstance(report["warnings"], list)


def test_quality_lists_filters_and_as_of(api: APIClient, otc: OtcData) -> None:
    body = get(api, "quality/")
    assert body["count"] == T1_WEEKS + 1  # the non-ATS weeks; the real file is ATS
    assert get(api, "quality/", ats="true")["count"] == 1
    t1 = get(api, "quality/", tier="T1")["results"]
    assert t1[0]["week"] == T1_LAST.isoformat() and t1[1]["prior_capture"] is not None
    grade = t1[0]["grade"]
    assert all(r["grade"] == grade for r in get(api, "quality/", grade=grade)["results"])
    assert_error(api.get(f"{API}/quality/", {"grade": "E"}), 400, "validation_error")
    (then,) = get(api, "quality/", tier="T2", as_of=format_iso(otc.before_correction))["results"]
    assert then["capture"] == otc.t2_original and then["metrics"]["total_volume"] == 1400


# --- captures ---------------------------------------------------------------------------


def test_captures_list_and_filters(api: APIClient, otc: OtcData) -> None:
    body = get(api, "captures/")
    assert body["count"] == 1 + T1_WEEKS + 2
    t2 = get(api, "captures/", tier="T2", week=CORRECTED_WEEK + timedelta(days=3))["results"]
    assert [c["id"] for c in t2] == [otc.t2_corrected, otc.t2_original]
    assert [c["current"] for c in t2] == [True, False]
    assert t2[1]["superseded_by"] == otc.t2_corrected
    assert get(api, "captures/", tier="T2", current="true")["count"] == 1
    assert get(api, "captures/", tier="T2", current="false")["count"] == 1
    then = get(api, "captures/", tier="T2", as_of=format_iso(otc.before_correction))
    assert [c["id"] for c in then["results"]] == [otc.t2_original]
    assert get(api, "captures/", tier="OTCE", ats="true")["results"][0]["id"] == otc.real_capture
    assert_error(api.get(f"{API}/captures/", {"tier": "T9"}), 400, "validation_error")
    assert_error(api.get(f"{API}/captures/", {"week": "soon"}), 400, "validation_error")
    assert_error(api.get(f"{API}/captures/", {"ordering": "source"}), 400, "validation_error")


def test_capture_lineage_detail(api: APIClient, otc: OtcData) -> None:
    real = get(api, f"captures/{otc.real_capture}/")
    assert real["source"].endswith("finra_otc_weekly_otc_20251215.psv")
    assert len(real["checksum"]) == 64 and real["rows"] == 5328 and real["rejects"] == 0
    assert real["last_update_dates"] and real["supersedes"] == [] and real["current"] is True
    corrected = get(api, f"captures/{otc.t2_corrected}/")
    assert corrected["supersedes"] == [otc.t2_original]
    original = get(api, f"captures/{otc.t2_original}/")
    assert original["superseded_by"] == otc.t2_corrected and original["superseded_at"]
    assert original["checksum"] != corrected["checksum"]
    assert get(api, f"captures/{otc.real_capture}/rejects/")["count"] == 0
    assert_error(api.get(f"{API}/captures/999999999/"), 404, "not_found")
    assert_error(api.get(f"{API}/captures/999999999/rejects/"), 404, "not_found")


# --- a fixed number of queries ------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "weeks/",
        "symbols/?tier=T1&week=2025-11-24&page_size=200",
        "symbols/?tier=T1",
        "venues/?tier=T1&week=2025-11-24",
        "venues/?tier=T1&sort=-share",
        "quality/",
        "captures/",
    ],
)
def test_lists_run_a_fixed_number_of_queries(
    api: APIClient, path: str, django_assert_max_num_queries: Any
) -> None:
    with django_assert_max_num_queries(MAX_QUERIES):
        response = api.get(f"{API}/{path}")
    assert response.status_code == 200


def test_per_symbol_and_venue_reads_run_a_fixed_number_of_queries(
    api: APIClient, otc: OtcData, django_assert_max_num_queries: Any
) -> None:
    symbol, mpid = t1_symbol(otc), t1_venue(otc)
    for path in (
        f"symbols/{symbol}/weekly/",
        f"symbols/{symbol}/venues/?week={T1_LAST}",
        f"symbols/{symbol}/venues/",
        f"symbols/{symbol}/rolling/?week={T1_LAST}",
        f"venues/{mpid}/",
        f"captures/{otc.real_capture}/",
    ):
        with django_assert_max_num_queries(MAX_QUERIES):
            response = api.get(f"{API}/{path}")
        assert response.status_code == 200, path


def test_fast_rows_render_exactly_as_drf_does(otc: OtcData) -> None:
    """The lists' fast rendering gives DRF's own output for every row and field."""
    week = {"week": T1_LAST, "tier": "T1", "ats": False}
    cases = [
        (SymbolSummarySerializer, list(selectors.symbol_summaries(**week)[:200])),
        (SymbolSummarySerializer, list(selectors.symbol_summaries(tier="OTC", ats=True)[:200])),
        (VenueShareSerializer, list(selectors.venue_shares_with_rolling(**week))),
        (VenueShareSerializer, list(selectors.venue_shares_with_rolling(tier="OTC", ats=True))),
        (SymbolVenueSerializer, selectors.symbol_venues(symbol="AABB", week=REAL_WEEK)),
        # As the views read them: dicts of the rendered columns.
        (SymbolSummarySerializer, list(selectors.symbol_summaries(**week).values(*SYMBOL_ROW))),
        (VenueShareSerializer, list(selectors.venue_shares_with_rolling().values(*VENUE_ROW))),
    ]
    for serializer_class, rows in cases:
        assert rows
        fast = serializer_class(rows, many=True).data
        drf = [serializers.Serializer.to_representation(serializer_class(), r) for r in rows]
        assert json.loads(json.dumps(fast)) == json.loads(json.dumps(drf)), serializer_class


def test_the_selectors_answer_what_the_api_says(api: APIClient, otc: OtcData) -> None:
    """The API adds nothing of its own to the numbers: it is the selectors, shaped."""
    rows = selectors.venue_shares_with_rolling(tier="T1", week=T1_LAST).order_by("rank", "mpid")
    body = get(api, "venues/", tier="T1", week=T1_LAST)["results"]
    assert [(r["mpid"], r["total_volume"], r["trend"]) for r in body] == [
        (r.mpid, r.total_volume, r.trend) for r in rows
    ]
