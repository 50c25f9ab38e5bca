"""A local stand-in for FINRA's Query API, for the client's tests.

Modelled on the recorded exchanges in ``shared/finra/api-samples/``: POST a JSON
query (``fields``, ``compareFilters`` with ``EQUAL``, ``sortFields``, ``limit`` at
most 5000, ``offset``) to ``/data/group/otcMarket/name/<dataset>``; the answer is
a gzip-encoded JSON array of objects holding the requested fields, with paging
headers. FINRA has sent those headers capitalised (``Record-Total``, 2023) and
all lower-case (``record-total``, 2026); ``header_style`` picks which, together
with the other headers each recording carries. No matching rows gives 204.

Besides serving datasets it can play scripted replies (errors, ``Retry-After``,
hangs, recorded responses) and rewrite pages to break the paging contract, and
it records every request with its arrival time.
"""

from __future__ import annotations

import gzip
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Literal

from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

SAMPLES_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "finra" / "api-samples"
PATH_PREFIX = "/data/group/otcMarket/name/"
MAX_LIMIT = 5000
_DATASET_PATH = re.compile(f"^{PATH_PREFIX}[A-Za-z]+$")

HeaderStyle = Literal["capitalised", "lower"]
Row = dict[str, Any]
Headers = list[tuple[str, str]]
#: (offset, rows, headers) -> (rows, headers): lets a test corrupt one page.
PageHook = Callable[[int, list[Row], Headers], tuple[list[Row], Headers]]

TIER_DESCRIPTIONS = {"T1": "NMS Tier 1", "T2": "NMS Tier 2", "OTCE": "OTC"}
VENUES = (
    ("EBXL", "EBXL LEVEL ATS"),
    ("INCR", "INCR INTELLIGENT CROSS LLC"),
    ("JPMX", "JPMX JPM-X"),
    ("MSPL", "MSPL MS POOL (ATS-4)"),
    ("SGMA", "SGMA SIGMA X2"),
    ("UBSA", "UBSA UBS ATS"),
    ("XSTM", "XSTM CROSSSTREAM"),
)


def load_sample(name: str) -> dict[str, Any]:
    """One recorded exchange, e.g. ``load_sample("weeklySummary_response")``."""
    return json.loads((SAMPLES_DIR / f"{name}.json").read_text())


def _symbol(index: int) -> str:
    """AAAA, AAAB, ... : distinct, sorted like the index."""
    letters = []
    for _ in range(4):
        index, rest = divmod(index, 26)
        letters.append(chr(ord("A") + rest))
    return "".join(reversed(letters))


def weekly_rows(
    count: int,
    *,
    week: date,
    tier: str = "T1",
    summary_type: str = "ATS_W_SMBL_FIRM",
) -> list[Row]:
    """``count`` per-venue weeklySummary rows for one week, sorted by symbol then MPID."""
    rows = []
    for k in range(count):
        symbol_index, venue_index = divmod(k, len(VENUES))
        mpid, venue_name = VENUES[venue_index]
        symbol = _symbol(symbol_index)
        rows.append(
            {
                "weekStartDate": week.isoformat(),
                "issueSymbolIdentifier": symbol,
                "issueName": f"{symbol.title()} Holdings Inc. Common Stock",
                "tierIdentifier": tier,
                "tierDescription": TIER_DESCRIPTIONS[tier],
                "MPID": mpid,
                "marketParticipantName": venue_name,
                "totalWeeklyShareQuantity": 1000 + (k * 7919) % 9_000_000,
                "totalWeeklyTradeCount": 1 + (k * 104_729) % 50_000,
                "lastUpdateDate": (week + timedelta(days=21)).isoformat(),
                "summaryTypeCode": summary_type,
            }
        )
    return rows


def week_rows(
    newest: date, count: int, *, tier: str = "T1", summary_type: str = "ATS_W_SMBL"
) -> list[Row]:
    """weeklyDownloadDetails rows: ``count`` consecutive weeks back from ``newest``."""
    return [
        {
            "weekStartDate": (newest - timedelta(weeks=n)).isoformat(),
            "tierIdentifier": tier,
            "summaryTypeCode": summary_type,
        }
        for n in range(count)
    ]


@dataclass
class Reply:
    """A scripted answer, played instead of serving the dataset."""

    status: int = 200
    headers: list[tuple[str, str]] = field(default_factory=list)
    #: bytes are sent as they are; anything else is JSON-encoded.
    body: Any = b""
    #: Seconds to hang before answering (cut short when the test ends).
    delay: float = 0.0
    gzip: bool = False

    @classmethod
    def from_recording(cls, name: str) -> Reply:
        """Replay a recorded response: its status, headers and (re-gzipped) body."""
        sample = load_sample(name)
        headers = [(k, v) for k, v in sample["headers"].items() if k.lower() != "content-length"]
        return cls(
            status=sample["status"],
            headers=headers,
            body=sample["body"],
            gzip=sample["headers"].get("content-encoding") == "gzip",
        )


@dataclass
class SeenRequest:
    at: float  # time.monotonic() on arrival
    dataset: str
    body: Any


class FakeFinra:
    """FINRA's Query API on a local pytest-httpserver ``HTTPServer``."""

    def __init__(self, server: HTTPServer) -> None:
        self.server = server
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.reset()

    @property
    def base_url(self) -> str:
        return self.server.url_for("/").rstrip("/")

    def reset(self) -> None:
        """Forget datasets, scripts, hooks and recorded requests; release hung replies."""
        self._release.set()
        self._release = threading.Event()
        with self._lock:
            self.datasets: dict[str, list[Row]] = {"weeklySummary": [], "weeklyDownloadDetails": []}
            self.header_style: HeaderStyle = "lower"
            self.gzip = True
            self.script: deque[Reply] = deque()
            self.fallback: Reply | None = None
            self.page_hook: PageHook | None = None
            self.requests: list[SeenRequest] = []
        self.server.clear()
        self.server.expect_request(_DATASET_PATH, method="POST").respond_with_handler(self._handle)

    def release_hung(self) -> None:
        self._release.set()

    # -- test-facing helpers ----------------------------------------------------------

    def serve(self, dataset: str, rows: list[Row]) -> None:
        self.datasets[dataset] = rows

    def reply_next(self, *replies: Reply) -> None:
        """Answer the next requests with these, in order, then go back to the datasets."""
        self.script.extend(replies)

    def reply_always(self, reply: Reply | None) -> None:
        """Answer every request with ``reply`` (``None`` to serve datasets again)."""
        self.fallback = reply

    @property
    def request_count(self) -> int:
        return len(self.requests)

    # -- the server side --------------------------------------------------------------

    def _handle(self, request: Request) -> Response:
        dataset = request.path.removeprefix(PATH_PREFIX)
        try:
            body = json.loads(request.get_data())
        except ValueError:
            body = None
        with self._lock:
            self.requests.append(SeenRequest(time.monotonic(), dataset, body))
            reply = self.script.popleft() if self.script else self.fallback
        if reply is not None:
            return self._play(reply)
        return self._query(dataset, body)

    def _play(self, reply: Reply) -> Response:
        if reply.delay:
            self._release.wait(reply.delay)
        payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        headers = list(reply.headers)
        if reply.gzip:
            payload = gzip.compress(payload)
            if not any(k.lower() == "content-encoding" for k, _ in headers):
                headers.append(("Content-Encoding", "gzip"))
        content_type = next(
            (v for k, v in headers if k.lower() == "content-type"), "application/json"
        )
        headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
        return Response(payload, status=reply.status, headers=headers, content_type=content_type)

    @staticmethod
    def _error(status: int, message: str) -> Response:
        return Response(
            json.dumps({"statusCode": status, "message": message}),
            status=status,
            content_type="application/json",
        )

    def _query(self, dataset: str, query: Any) -> Response:
        if dataset == "weeklySummaryHistoric" and dataset not in self.datasets:
            dataset = "weeklySummary"  # one dataset for both windows, unless told apart
        if dataset not in self.datasets:
            return self._error(404, f"dataset {dataset} not found")
        if not isinstance(query, dict):
            return self._error(400, "request body must be a JSON object")
        limit, offset = query.get("limit", MAX_LIMIT), query.get("offset", 0)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            return self._error(400, f"limit must be between 1 and {MAX_LIMIT}")
        if not isinstance(offset, int) or offset < 0:
            return self._error(400, "offset must be a non-negative integer")
        rows = self.datasets[dataset]
        known = set(rows[0]) if rows else set()
        for flt in query.get("compareFilters", []):
            if flt.get("compareType") != "EQUAL":
                return self._error(400, f"unsupported compareType {flt.get('compareType')}")
            name, value = flt.get("fieldName"), flt.get("fieldValue")
            rows = [r for r in rows if str(r.get(name)) == str(value)]
        for flt in query.get("dateRangeFilters", []):
            name, start, end = flt.get("fieldName"), flt.get("startDate"), flt.get("endDate")
            rows = [r for r in rows if start <= str(r.get(name)) <= end]
        for sort_field in reversed(query.get("sortFields", [])):
            name = sort_field.lstrip("-")
            if known and name not in known:
                return self._error(400, f"unknown sort field {name}")
            rows = sorted(
                rows, key=lambda r, n=name: str(r.get(n, "")), reverse=sort_field.startswith("-")
            )
        fields = query.get("fields") or sorted(known)
        if known and set(fields) - known:
            return self._error(400, f"unknown fields {sorted(set(fields) - known)}")
        total = len(rows)
        if total == 0:
            return Response(status=204)
        page = [{f: r[f] for f in fields} for r in rows[offset : offset + limit]]
        headers = self._paging_headers(total=total, offset=offset, limit=limit, on_page=len(page))
        if self.page_hook is not None:
            page, headers = self.page_hook(offset, page, headers)
        payload = json.dumps(page).encode()
        if self.gzip:
            payload = gzip.compress(payload)
            headers.append(("Content-Encoding", "gzip"))
        return Response(payload, status=200, headers=headers, content_type="application/json")

    def _paging_headers(
        self, *, total: int, offset: int, limit: int, on_page: int
    ) -> list[tuple[str, str]]:
        """The header set of the 2023 recording (capitalised) or the 2026 one (lower-case)."""
        if self.header_style == "capitalised":
            return [
                ("Record-Limit", str(limit)),
                ("Record-Max-Limit", str(MAX_LIMIT)),
                ("Record-Offset", str(offset)),
                ("Record-Total", str(total)),
                ("Response-Payload-Max-Size", "3mb"),
                ("Total-Records-On-Page", str(on_page)),
            ]
        return [
            ("cache-control", "no-cache, no-store"),
            ("data-version", "1"),
            ("limit", str(limit)),
            ("offset", str(offset)),
            ("record-limit", str(limit)),
            ("record-max-limit", str(MAX_LIMIT)),
            ("record-offset", str(offset)),
            ("record-total", str(total)),
            ("response-payload-max-size", "3mb"),
        ]
