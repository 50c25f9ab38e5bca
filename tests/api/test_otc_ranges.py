"""Analysts' range reads: a symbol's venue shares and a venue's market share over weeks,
ATS and non-ATS kept apart (combined only when asked, and labelled), checked against
numbers computed here from the fixture's own rows.

Data: two T1 weeks, each ingested once as the ATS summary and once as the non-ATS one
(one MPID, ATSA, reports in both, so a combined series really adds), and the second
week's ATS file corrected once, with the instant between the two kept for ``as_of``.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from otc.selectors.ranges import ATS, COMBINED, NON_ATS
from spine.time import format_iso, utc_now
from tests.api.conftest import assert_error, make_user, token_client
from tests.api.otc_data import unload
from tests.otc.etl_support import row, run_etl, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

API = "/api/v1/otc"
W1, W2 = date(2025, 11, 3), date(2025, 11, 10)
Q4 = Decimal("0.0001")

#: (week, ats) → [(symbol, mpid, shares, trades)]: the files, and the expected numbers' source.
FILES: dict[tuple[date, bool], list[tuple[str, str, int, int]]] = {
    (W1, True): [
        ("ZZA", "ATSA", 600, 6),
        ("ZZA", "ATSB", 400, 4),
        ("ZZB", "ATSA", 1000, 10),
    ],
    (W1, False): [
        ("ZZA", "FRMA", 3000, 30),
        ("ZZA", "FRMB", 1000, 10),
        ("ZZA", "ATSA", 100, 1),
        ("ZZB", "FRMA", 500, 5),
    ],
    (W2, True): [
        ("ZZA", "ATSA", 500, 5),
        ("ZZA", "ATSB", 500, 5),
        ("ZZB", "ATSB", 200, 2),
    ],
    (W2, False): [
        ("ZZA", "FRMA", 2000, 20),
        ("ZZB", "FRMB", 800, 8),
    ],
}
#: The ATS file of W2 as first received (before the correction above).
W2_ATS_ORIGINAL = [
    ("ZZA", "ATSA", 900, 9),
    ("ZZA", "ATSB", 100, 1),
    ("ZZB", "ATSB", 200, 2),
]


@dataclass(frozen=True)
class Loaded:
    captures: dict[tuple[date, bool], int]
    before_correction: datetime


def _write(directory: Path, name: str, rows: list[tuple[str, str, int, int]]) -> Path:
    return write_file(
        directory, [row(s, m, v, t, tier="T1", venue=f"{m} VENUE") for s, m, v, t in rows], name
    )


@pytest.fixture(scope="module")
def data(django_db_setup: None, django_db_blocker: Any) -> Iterator[Loaded]:
    with django_db_blocker.unblock(), tempfile.TemporaryDirectory(prefix="otc-ranges-") as tmp:
        unload()
        try:
            captures = {}
            for (week, ats), rows in FILES.items():
                if (week, ats) == (W2, True):
                    _etl(_write(Path(tmp), "w2-ats-v1.psv", W2_ATS_ORIGINAL), week, ats)
                    before = utc_now()
                captures[(week, ats)] = _etl(
                    _write(Path(tmp), f"{week}-{ats}.psv", rows), week, ats
                )
            yield Loaded(captures, before)
        finally:
            unload()


def _etl(path: Path, week: date, ats: bool) -> int:
    return run_etl(path, tier="T1", week=week, ats=ats)["capture_id"]


@pytest.fixture
def api(data: Loaded, db: None) -> APIClient:
    return token_client(make_user("analyst"))


def pct(part: int, whole: int) -> str:
    return str((Decimal(part) * 100 / whole).quantize(Q4, ROUND_HALF_UP))


def ranks(volumes: dict[str, int]) -> dict[str, int]:
    """Competition ranking (1 = most, ties share), computed independently of the SQL."""
    return {
        key: 1 + sum(other > value for other in volumes.values()) for key, value in volumes.items()
    }


def get_all(client: APIClient, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list, page by page."""
    rows, page = [], 1
    while True:
        response = client.get(f"{API}/{path}", {**params, "page": page, "page_size": 2})
        assert response.status_code == 200, response.content[:400]
        body = json.loads(response.content)
        rows.extend(body["results"])
        if body["next"] is None:
            return rows
        page += 1


# --- a symbol's venue shares -------------------------------------------------------------


def expected_symbol_rows(
    symbol: str, series: list[str], files: dict[tuple[date, bool], list[Any]] = FILES
) -> list[tuple[Any, ...]]:
    out = []
    for week in (W1, W2):
        per: dict[str, dict[str, tuple[int, int]]] = {}
        for ats in (True, False):
            per[ATS if ats else NON_ATS] = {
                m: (v, t) for s, m, v, t in files[(week, ats)] if s == symbol
            }
        both: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for venues in per.values():
            for mpid, (v, t) in venues.items():
                both[mpid][0] += v
                both[mpid][1] += t
        per[COMBINED] = {m: (v, t) for m, (v, t) in both.items()}
        for name in series:
            venues = per[name]
            total = sum(v for v, _ in venues.values())
            rank = ranks({m: v for m, (v, _) in venues.items()})
            for mpid in sorted(venues, key=lambda m: (rank[m], m)):
                v, t = venues[mpid]
                out.append((week.isoformat(), name, mpid, v, t, total, pct(v, total), rank[mpid]))
    return out


def shape(rows: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [
        (
            r["week"],
            r["series"],
            r["mpid"],
            r["shares"],
            r["trades"],
            r["symbol_volume"],
            r["share"],
            r["rank"],
        )
        for r in rows
    ]


@pytest.mark.parametrize(
    ("ats", "series"),
    [("true", [ATS]), ("false", [NON_ATS]), (None, [NON_ATS]), ("ALL", [ATS, NON_ATS, COMBINED])],
)
@pytest.mark.parametrize("symbol", ["ZZA", "zzb"])
def test_symbol_venue_shares_are_the_numbers_of_the_files(
    api: APIClient, data: Loaded, ats: str | None, series: list[str], symbol: str
) -> None:
    params = {"start": W1.isoformat(), "end": "2025-11-16", "tier": "T1"}
    if ats is not None:
        params["ats"] = ats
    rows = get_all(api, f"symbols/{symbol}/venue-shares/", **params)
    assert shape(rows) == expected_symbol_rows(symbol.upper(), series)
    for r in rows:
        assert r["symbol"] == symbol.upper() and r["tier"] == "T1"
        assert r["ats"] is {ATS: True, NON_ATS: False, COMBINED: None}[r["series"]]
        if r["series"] == COMBINED:
            assert r["capture"] is None
        else:
            assert r["capture"] == data.captures[(date.fromisoformat(r["week"]), r["ats"])]


def test_symbol_venue_shares_never_sum_the_summaries_outside_the_combined_series(
    api: APIClient,
) -> None:
    rows = get_all(api, "symbols/ZZA/venue-shares/", start=W1, end=W1, ats="all")
    atsa = {r["series"]: r["shares"] for r in rows if r["mpid"] == "ATSA"}
    assert atsa == {ATS: 600, NON_ATS: 100, COMBINED: 700}
    by_series: dict[str, int] = defaultdict(int)
    for r in rows:
        by_series[r["series"]] += r["shares"]
    assert by_series == {ATS: 1000, NON_ATS: 4100, COMBINED: 5100}


def test_symbol_venue_shares_range_and_as_of(api: APIClient, data: Loaded) -> None:
    only_w2 = get_all(api, "symbols/ZZA/venue-shares/", start="2025-11-12", end=W2, ats="true")
    assert {r["week"] for r in only_w2} == {W2.isoformat()}
    then = get_all(
        api,
        "symbols/ZZA/venue-shares/",
        start=W2,
        end=W2,
        ats="true",
        as_of=format_iso(data.before_correction),
    )
    assert [(r["mpid"], r["shares"], r["share"], r["rank"]) for r in then] == [
        ("ATSA", 900, "90.0000", 1),
        ("ATSB", 100, "10.0000", 2),
    ]
    # Ties share a rank (W2 now: 500 / 500).
    now = get_all(api, "symbols/ZZA/venue-shares/", start=W2, end=W2, ats="true")
    assert [(r["mpid"], r["rank"]) for r in now] == [("ATSA", 1), ("ATSB", 1)]
    # A known symbol with nothing in the range: an empty list.
    assert get_all(api, "symbols/ZZA/venue-shares/", start="2020-01-06", end="2020-03-02") == []


# --- a venue's market share ---------------------------------------------------------------


def expected_venue_rows(mpid: str, series: list[str]) -> list[tuple[Any, ...]]:
    out = []
    for week in (W1, W2):
        per: dict[str, dict[str, list[Any]]] = {}
        for ats in (True, False):
            venues: dict[str, list[Any]] = defaultdict(lambda: [0, 0, set()])
            for s, m, v, t in FILES[(week, ats)]:
                venues[m][0] += v
                venues[m][1] += t
                venues[m][2].add(s)
            per[ATS if ats else NON_ATS] = venues
        both: dict[str, list[Any]] = defaultdict(lambda: [0, 0, None])
        for venues in per.values():
            for m, (v, t, _) in venues.items():
                both[m][0] += v
                both[m][1] += t
        per[COMBINED] = both
        for name in series:
            venues = per[name]
            if mpid not in venues:
                continue
            total = sum(v for v, _, _ in venues.values())
            v, t, symbols = venues[mpid]
            rank = ranks({m: vals[0] for m, vals in venues.items()})[mpid]
            count = None if symbols is None else len(symbols)
            out.append((week.isoformat(), name, v, t, count, total, pct(v, total), rank))
    return out


@pytest.mark.parametrize(
    ("ats", "series"),
    [("true", [ATS]), ("false", [NON_ATS]), ("all", [ATS, NON_ATS, COMBINED])],
)
@pytest.mark.parametrize("mpid", ["ATSA", "frma", "ATSB"])
def test_venue_market_share_is_the_numbers_of_the_files(
    api: APIClient, data: Loaded, ats: str, series: list[str], mpid: str
) -> None:
    rows = get_all(api, f"venues/{mpid}/market-share/", start=W1, end=W2, tier="T1", ats=ats)
    assert [
        (
            r["week"],
            r["series"],
            r["total_volume"],
            r["total_trades"],
            r["symbol_count"],
            r["tier_volume"],
            r["market_share"],
            r["rank"],
        )
        for r in rows
    ] == expected_venue_rows(mpid.upper(), series)
    assert all(
        r["mpid"] == mpid.upper() and r["venue_name"] == f"{mpid.upper()} VENUE" for r in rows
    )


def test_venue_market_share_as_of(api: APIClient, data: Loaded) -> None:
    (then,) = get_all(
        api,
        "venues/ATSB/market-share/",
        start=W2,
        end=W2,
        ats="true",
        as_of=format_iso(data.before_correction),
    )
    assert (then["total_volume"], then["tier_volume"], then["market_share"]) == (
        300,
        1200,
        "25.0000",
    )


# --- errors and permissions ---------------------------------------------------------------

RANGE_PATHS = ["symbols/ZZA/venue-shares/", "venues/ATSA/market-share/"]


@pytest.mark.parametrize("path", RANGE_PATHS)
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"end": "2025-11-10"}, "start"),
        ({"start": "2025-11-10"}, "end"),
        ({"start": "2025-11-31", "end": "2025-12-01"}, "start"),
        ({"start": "2025-11-10", "end": "soon"}, "end"),
        ({"start": "2025-11-17", "end": "2025-11-10"}, "end"),
        ({"start": "2020-01-06", "end": "2025-01-13"}, "end"),  # 263 weeks
        ({"start": "2025-11-03", "end": "2025-11-10", "tier": "T4"}, "tier"),
        ({"start": "2025-11-03", "end": "2025-11-10", "ats": "both"}, "ats"),
        ({"start": "2025-11-03", "end": "2025-11-10", "ats": ""}, "ats"),
        ({"start": "2025-11-03", "end": "2025-11-10", "as_of": "noon"}, "as_of"),
        ({"start": "2025-11-03", "end": "2025-11-10", "page_size": "0"}, "page_size"),
        ({"start": "2025-11-03", "end": "2025-11-10", "format": "xml"}, "format"),
    ],
)
def test_range_bad_params_are_400_naming_them(
    api: APIClient, path: str, params: dict[str, str], field: str
) -> None:
    error = assert_error(api.get(f"{API}/{path}", params), 400, "validation_error")
    assert field in error["details"], error


def test_five_years_of_weeks_are_answered(api: APIClient) -> None:
    # 2020-01-06 .. 2025-01-06 is 262 weeks apart by Mondays minus one: exactly 261.
    assert get_all(api, RANGE_PATHS[0], start="2020-01-13", end="2025-01-06") == []


@pytest.mark.parametrize(
    ("path", "details"),
    [
        ("symbols/NOPE1/venue-shares/", {"symbol": "NOPE1"}),
        ("venues/NOPE/market-share/", {"mpid": "NOPE"}),
    ],
)
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_range_unknown_key_is_404(
    api: APIClient, path: str, details: dict[str, str], fmt: str
) -> None:
    response = api.get(f"{API}/{path}", {"start": W1, "end": W2, "format": fmt})
    assert response["Content-Type"] == "application/json"
    assert assert_error(response, 404, "not_found")["details"] == details


@pytest.mark.parametrize("path", RANGE_PATHS)
def test_range_reads_need_authentication_unless_public(
    data: Loaded, anon_client: APIClient, settings: Any, path: str
) -> None:
    query = {"start": W1, "end": W2}
    assert_error(anon_client.get(f"{API}/{path}", query), 401, "not_authenticated")
    assert_error(
        anon_client.get(f"{API}/{path}", {**query, "format": "csv"}), 401, "not_authenticated"
    )
    settings.SPINE_PUBLIC_READ = True
    assert anon_client.get(f"{API}/{path}", query).status_code == 200
    csv_response = anon_client.get(f"{API}/{path}", {**query, "format": "csv"})
    assert csv_response.status_code == 200 and csv_response.streaming


def test_range_reads_spend_the_read_budget(api: APIClient, settings: Any) -> None:
    settings.SPINE_RATELIMIT_READ = "2/m"
    query = {"start": W1, "end": W2, "format": "csv"}
    first = api.get(f"{API}/{RANGE_PATHS[0]}", query)
    assert first["X-RateLimit-Limit"] == "2" and first["X-RateLimit-Remaining"] == "1"
    api.get(f"{API}/{RANGE_PATHS[1]}", query)
    limited = api.get(f"{API}/{RANGE_PATHS[0]}", query)
    assert_error(limited, 429, "rate_limited")
    assert limited["Retry-After"]


def test_range_rows_are_the_users_reads_only(data: Loaded, db: None) -> None:
    """No model permission is needed to read analytics; a write is refused."""
    client = token_client(User.objects.create_user("plain", password="not-used-pw-123"))
    assert client.get(f"{API}/{RANGE_PATHS[0]}", {"start": W1, "end": W2}).status_code == 200
    assert_error(client.post(f"{API}/{RANGE_PATHS[0]}", {}), 405, "method_not_allowed")


# --- every OTC answer says which summary --------------------------------------------------

#: Rows that belong to one capture, which itself says (``captures/{id}/``).
OF_A_CAPTURE = {f"{API}/captures/{{id}}/rejects/", f"{API}/captures/{{id}}/lines/"}


def _resolve(schema: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[-1]]
    return node


def test_every_otc_answer_says_ats_or_non_ats() -> None:
    """An answer that could hold both summaries names, in each row (or once for a
    single object), which one it is: ``ats`` (and ``series`` on the range reads)."""
    from drf_spectacular.generators import SchemaGenerator

    schema = SchemaGenerator().get_schema(request=None, public=True)
    checked = []
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if not path.startswith(f"{API}/") or operation is None or path in OF_A_CAPTURE:
            continue
        body = _resolve(
            schema, operation["responses"]["200"]["content"]["application/json"]["schema"]
        )
        if "results" in body.get("properties", {}):
            body = _resolve(schema, body["properties"]["results"]["items"])
        elif body.get("type") == "array":
            body = _resolve(schema, body["items"])
        assert "ats" in body.get("properties", {}), path
        checked.append(path)
    assert len(checked) >= 12, checked
