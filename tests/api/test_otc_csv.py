"""``?format=csv`` on every OTC list endpoint: the same rows as the JSON pages, streamed,
safe to open in a spreadsheet, errors still JSON, documented in the schema.

Data: FINRA's real file (the ATS summary, week of 2025-12-15) and a small T1 week
whose names start with formula characters and which holds one rejected line.
"""

from __future__ import annotations

import csv
import io
import json
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.http import StreamingHttpResponse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from spine.api.csv import CHUNK_ROWS, csv_cell
from tests.api.conftest import assert_error
from tests.api.otc_data import unload
from tests.otc.etl_support import row, run_etl, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

API = "/api/v1/otc"
REAL_WEEK = date(2025, 12, 15)
T1_WEEK = date(2025, 12, 8)
REAL_SYMBOLS = 3111
#: Names a spreadsheet would run as formulas, as FINRA could send them.
HOSTILE = {
    "ZZEQ": ('=HYPERLINK("http://example.invalid","x")', "+PLUS VENUE", "PLS"),
    "ZZAT": ("@SUM(1+1)", "-MINUS VENUE", "MNS"),
}


@dataclass(frozen=True)
class Loaded:
    real: int
    t1: int


@pytest.fixture(scope="module")
def data(django_db_setup: None, django_db_blocker: Any, real_otc_file: Path) -> Iterator[Loaded]:
    with django_db_blocker.unblock(), tempfile.TemporaryDirectory(prefix="otc-csv-") as tmp:
        unload()
        try:
            real = run_etl(real_otc_file, tier="OTC", week=REAL_WEEK, ats=True)["capture_id"]
            lines = [
                row(symbol, f"{mpid}{n}", 100 * (n + 1), n + 1, tier="T1", name=name, venue=venue)
                for symbol, (name, venue, mpid) in HOSTILE.items()
                for n in range(2)
            ]
            lines += [row(f"ZZ{n:02d}", "ATS0", 1000 + n, 10, tier="T1") for n in range(40)]
            lines.append(row("ZZBAD", "ATS0", "12x", 1, tier="T1"))
            path = write_file(Path(tmp), lines, "t1.psv")
            t1 = run_etl(path, tier="T1", week=T1_WEEK, ats=False)["capture_id"]
            yield Loaded(real, t1)
        finally:
            unload()


@pytest.fixture
def api(data: Loaded, reader_client: APIClient) -> APIClient:
    return reader_client


# --- the list endpoints, from the schema ---------------------------------------------------


def _list_operations() -> list[str]:
    """Every OTC GET operation answering a paginated list: the ones CSV must cover."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        operation = item.get("get")
        if not path.startswith(f"{API}/") or operation is None:
            continue
        ok = operation["responses"].get("200", {}).get("content", {})
        ref = ok.get("application/json", {}).get("schema", {}).get("$ref", "")
        if ref.rsplit("/", 1)[-1].startswith("Paginated"):
            found.append(path)
    return sorted(found)


LIST_PATHS = _list_operations()
#: Query parameters giving each list some rows (a new list needs none, or an entry here).
QUERIES: dict[str, dict[str, str]] = {
    f"{API}/symbols/": {"tier": "OTC", "ats": "true"},
    f"{API}/venues/": {"tier": "OTC", "ats": "true"},
    f"{API}/symbols/{{symbol}}/weekly/": {"ats": "true"},
    f"{API}/venues/{{mpid}}/": {"ats": "true"},
    f"{API}/symbols/{{symbol}}/venue-shares/": {
        "start": "2025-12-01",
        "end": "2025-12-31",
        "ats": "all",
    },
    f"{API}/venues/{{mpid}}/market-share/": {
        "start": "2025-12-01",
        "end": "2025-12-31",
        "ats": "all",
    },
}


def test_the_schema_lists_every_list_endpoint() -> None:
    expected = {
        "weeks/",
        "symbols/",
        "symbols/{symbol}/weekly/",
        "symbols/{symbol}/venue-shares/",
        "venues/",
        "venues/{mpid}/",
        "venues/{mpid}/market-share/",
        "quality/",
        "captures/",
        "captures/{id}/rejects/",
    }
    assert {f"{API}/{path}" for path in expected} <= set(LIST_PATHS)


def _concrete(template: str, data: Loaded) -> str:
    return (
        template.replace("{symbol}", "AABB").replace("{mpid}", "OTCN").replace("{id}", str(data.t1))
    )


def json_rows(client: APIClient, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    page = 1
    while True:
        response = client.get(path, {**params, "page": page, "page_size": 500})
        assert response.status_code == 200, response.content[:300]
        body = json.loads(response.content)
        rows += body["results"]
        if body["next"] is None:
            return rows
        page += 1


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.content[:300]
    assert isinstance(response, StreamingHttpResponse)
    body = b"".join(response.streaming_content).decode("utf-8")
    return list(csv.reader(io.StringIO(body, newline="")))


def expected_cell(value: Any) -> str:
    """What a JSON value becomes in a cell, written out independently of the renderer."""
    if value is None:
        return ""
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    else:
        text = str(value)
    return "'" + text if isinstance(value, str) and text[:1] in "=+-@\t\r" and text else text


@pytest.mark.parametrize("template", LIST_PATHS)
def test_csv_is_the_json_list_row_for_row(api: APIClient, data: Loaded, template: str) -> None:
    path = _concrete(template, data)
    params = QUERIES.get(template, {})
    rows = json_rows(api, path, params)
    assert rows, f"{template}: give it query parameters with rows in QUERIES"
    response = api.get(path, {**params, "format": "csv"})
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="otc-')
    table = csv_rows(response)
    assert table[0] == list(rows[0])
    assert table[1:] == [[expected_cell(r[name]) for name in r] for r in rows]
    # The Accept header chooses CSV just as ?format=csv does.
    by_accept = api.get(path, params, HTTP_ACCEPT="text/csv")
    assert csv_rows(by_accept) == table


def test_csv_is_not_paginated_and_names_the_query(api: APIClient) -> None:
    params = {"tier": "OTC", "ats": "true", "week": "2025-12-17", "ordering": "symbol"}
    response = api.get(f"{API}/symbols/", {**params, "format": "csv", "page_size": "3"})
    table = csv_rows(response)
    assert len(table) == 1 + REAL_SYMBOLS
    assert [r[0] for r in table[1:]] == sorted(r[0] for r in table[1:])
    assert response["Content-Disposition"] == (
        'attachment; filename="otc-symbols_ats-true_ordering-symbol_page_size-3_tier-OTC'
        '_week-2025-12-17.csv"'
    )


def test_csv_keeps_decimals_and_integers_exactly(api: APIClient) -> None:
    query = {"tier": "OTC", "ats": "true", "search": "AABB"}
    (as_json,) = json_rows(api, f"{API}/symbols/", query)
    header, values = csv_rows(api.get(f"{API}/symbols/", {**query, "format": "csv"}))
    cells = dict(zip(header, values, strict=True))
    assert cells["total_volume"] == "6794184" == str(as_json["total_volume"])
    assert cells["hhi"] == as_json["hhi"] and len(cells["hhi"].split(".")[1]) == 4
    assert cells["ats"] == "true"


# --- formula injection -------------------------------------------------------------------


def test_cells_starting_a_formula_are_neutralised(api: APIClient) -> None:
    response = api.get(f"{API}/symbols/", {"tier": "T1", "format": "csv", "search": "ZZ"})
    table = csv_rows(response)
    header = table[0]
    by_symbol = {r[0]: dict(zip(header, r, strict=True)) for r in table[1:]}
    for symbol, (name, venue, _) in HOSTILE.items():
        assert by_symbol[symbol]["issue_name"] == "'" + name
        assert by_symbol[symbol]["top_venue_name"] == "'" + venue
    body = b"".join(api.get(f"{API}/symbols/", {"tier": "T1", "format": "csv"}).streaming_content)
    # Every cell quoted: a ";" or "," inside a cell never starts another one.
    assert all(line.startswith(b'"') for line in body.splitlines())


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=1+2", "'=1+2"),
        ("+1", "'+1"),
        ("-cmd", "'-cmd"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tTAB", "'\tTAB"),
        ("\rCR", "'\rCR"),
        ("A=1", "A=1"),
        ("", ""),
        (None, ""),
        (True, "true"),
        (-5, "-5"),
        ({"a": 1}, '{"a":1}'),
    ],
)
def test_csv_cell(value: Any, cell: str) -> None:
    assert csv_cell(value) == cell


def test_numeric_columns_are_never_prefixed() -> None:
    assert csv_cell("-1.5000", numeric=True) == "-1.5000"


# --- streaming ---------------------------------------------------------------------------


def _open_cursors() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_cursors WHERE name LIKE '_django_curs_%%'")
        return int(cursor.fetchone()[0])


def test_csv_streams_a_chunk_at_a_time(api: APIClient) -> None:
    """The body comes out a chunk of rows at a time, while the rows are still being read:
    on PostgreSQL through a server-side cursor, open after the first chunk and closed at
    the end (SQLite's cursor is read a chunk at a time by Django's iterator)."""
    response = api.get(f"{API}/symbols/", {"tier": "OTC", "ats": "true", "format": "csv"})
    assert isinstance(response, StreamingHttpResponse) and response.streaming
    chunks = iter(response.streaming_content)
    first = next(chunks)
    assert first.count(b"\r\n") == 1 + CHUNK_ROWS  # header + one chunk of rows
    if connection.vendor == "postgresql":
        assert _open_cursors() == 1
    rest = b"".join(chunks)
    assert (first + rest).count(b"\r\n") == 1 + REAL_SYMBOLS
    if connection.vendor == "postgresql":
        assert _open_cursors() == 0


# --- errors, formats, permissions ----------------------------------------------------------


def test_errors_of_a_csv_request_are_json(api: APIClient, anon_client: APIClient) -> None:
    response = api.get(f"{API}/symbols/", {"tier": "T9", "format": "csv"})
    assert response["Content-Type"] == "application/json"
    assert "tier" in assert_error(response, 400, "validation_error")["details"]
    assert_error(api.get(f"{API}/symbols/NOPE1/weekly/", {"format": "csv"}), 404, "not_found")
    assert_error(api.get(f"{API}/venues/NOPE/", {"format": "csv"}), 404, "not_found")
    assert_error(api.get(f"{API}/captures/999999/rejects/", {"format": "csv"}), 404, "not_found")
    assert_error(anon_client.get(f"{API}/weeks/", {"format": "csv"}), 401, "not_authenticated")


@pytest.mark.parametrize(
    "path",
    ["weeks/?format=xml", "symbols/AABB/rolling/?format=csv", "symbols/AABB/venues/?format=csv"],
)
def test_a_format_an_endpoint_does_not_answer_is_400(api: APIClient, path: str) -> None:
    error = assert_error(api.get(f"{API}/{path}"), 400, "validation_error")
    assert "format" in error["details"], error


def test_public_read_opens_csv_too(data: Loaded, anon_client: APIClient, settings: Any) -> None:
    settings.SPINE_PUBLIC_READ = True
    response = anon_client.get(f"{API}/weeks/", {"format": "csv"})
    assert csv_rows(response)[0][0] == "week"
    assert "X-RateLimit-Limit" in response


def test_the_schema_documents_csv_on_list_operations_only() -> None:
    schema = SchemaGenerator().get_schema(request=None, public=True)
    for path in LIST_PATHS:
        operation = schema["paths"][path]["get"]
        names = {p["name"] for p in operation["parameters"]}
        assert "format" in names, path
        assert operation["responses"]["200"]["content"]["text/csv"]["schema"]["type"] == "string"
        for code, response in operation["responses"].items():
            if not code.startswith("2"):
                assert "text/csv" not in response.get("content", {}), (path, code)
    rolling = schema["paths"][f"{API}/symbols/{{symbol}}/rolling/"]["get"]
    assert "text/csv" not in rolling["responses"]["200"]["content"]


def test_a_method_not_allowed_is_405_whatever_the_format(api: APIClient) -> None:
    for fmt in ("csv", "xml"):
        response = api.generic("TRACE", f"{API}/captures/?format={fmt}")
        assert_error(response, 405, "method_not_allowed")
    assert_error(api.post(f"{API}/weeks/?format=csv", {}), 405, "method_not_allowed")


def test_csv_still_refuses_a_bad_page_parameter(api: APIClient) -> None:
    for params in ({"page": "-1"}, {"page_size": "1000"}):
        response = api.get(
            f"{API}/venues/", {"tier": "OTC", "ats": "true", "format": "csv", **params}
        )
        assert set(assert_error(response, 400, "validation_error")["details"]) == set(params)


def test_a_format_suffix_in_the_path_stays_a_404(api: APIClient) -> None:
    assert_error(api.get(f"{API}/captures/0.5/"), 404, "not_found")
