"""A local fake of FINRA's Query API over both windows, for sync tests and benchmarks.

It answers on a real HTTP port (a werkzeug server in a thread), so Celery worker
processes reach it as they would reach ``https://api.finra.org``; the behaviour it
models is listed in docs/otc.md ("The fake FINRA").
"""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from werkzeug import Request, Response
from werkzeug.serving import BaseWSGIServer, make_server

PATH_PREFIX = "/data/group/otcMarket/name/"
RECENT = "weeklySummary"
HISTORIC = "weeklySummaryHistoric"
DETAILS = "weeklyDownloadDetails"
MAX_LIMIT = 5000
#: weeklySummary holds weeks starting no longer ago than this; weeklySummaryHistoric the
#: ~4 years before that.
RECENT_DAYS = 365
HISTORIC_DAYS = 4 * 365

FIRM_TYPES = ("ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM")
SYMBOL_TYPES = ("ATS_W_SMBL", "OTC_W_SMBL")
SUMMARY_TYPES = FIRM_TYPES + SYMBOL_TYPES
TIERS = ("T1", "T2", "OTCE")
TIER_DESCRIPTIONS = {"T1": "NMS Tier 1", "T2": "NMS Tier 2", "OTCE": "OTC"}
#: How FINRA's older rows describe the tiers (seen in data before this week).
OLD_DESCRIPTIONS_BEFORE = date(2022, 1, 3)
OLD_TIER_DESCRIPTIONS = {"T1": "Tier 1", "T2": "Tier 2", "OTCE": "OTCE"}
#: On weeklySummaryHistoric only these fields may be filtered on (week or month + tier).
HISTORIC_FILTERABLE = frozenset({"weekStartDate", "tierIdentifier", "monthStartDate"})

ATS_VENUES = (
    ("EBXL", "EBXL LEVEL ATS"),
    ("INCR", "INCR INTELLIGENT CROSS LLC"),
    ("JPMX", "JPMX JPM-X"),
    ("MSPL", "MSPL MS POOL (ATS-4)"),
    ("SGMA", "SGMA SIGMA X2"),
    ("UBSA", "UBSA UBS ATS"),
)
MEMBER_FIRMS = (
    ("CDRG", "CITADEL SECURITIES LLC"),
    ("VIRT", "VIRTU AMERICAS LLC"),
    ("JNST", "JANE STREET CAPITAL, LLC"),
    ("GSCO", "GOLDMAN SACHS & CO. LLC"),
    ("NITE", "G1 EXECUTION SERVICES, LLC"),
)

Row = dict[str, Any]
Key = tuple[str, str, date]  # (summaryTypeCode, tierIdentifier, weekStartDate)


def _symbol(index: int) -> str:
    letters = []
    for _ in range(4):
        index, rest = divmod(index, 26)
        letters.append(chr(ord("A") + rest))
    return "".join(reversed(letters))


def tier_identifier(tier: str) -> str:
    """FINRA's ``tierIdentifier`` for a Market Spine tier code."""
    return "OTCE" if tier.upper() in ("OTC", "OTCE") else tier.upper()


def firm_type(ats: bool) -> str:
    return FIRM_TYPES[0] if ats else FIRM_TYPES[1]


def firm_rows(
    summary_type: str,
    tier: str,
    week: date,
    *,
    symbols: int,
    revision: int,
    last_update: date,
    old_descriptions_before: date = OLD_DESCRIPTIONS_BEFORE,
) -> list[Row]:
    """Per-venue rows for one (dataset, week): ``symbols`` symbols × the dataset's venues.

    Volumes depend on the key and ``revision``, so a republished week differs."""
    tier = tier_identifier(tier)
    venues = ATS_VENUES if summary_type.startswith("ATS") else MEMBER_FIRMS
    old = week < old_descriptions_before
    descriptions = OLD_TIER_DESCRIPTIONS if old else TIER_DESCRIPTIONS
    seed = week.toordinal() * 7 + TIERS.index(tier) * 3 + FIRM_TYPES.index(summary_type)
    rows = []
    for s in range(symbols):
        symbol = _symbol(s)
        for v, (mpid, name) in enumerate(venues):
            k = seed * 1009 + s * 31 + v + revision * 7919
            rows.append(
                {
                    "weekStartDate": week.isoformat(),
                    "issueSymbolIdentifier": symbol,
                    "issueName": f"{symbol.title()} Holdings Inc. Common Stock",
                    "tierIdentifier": tier,
                    "tierDescription": descriptions[tier],
                    "MPID": mpid,
                    "marketParticipantName": name,
                    "totalWeeklyShareQuantity": 100 + (k * 7919) % 5_000_000,
                    "totalWeeklyTradeCount": 1 + (k * 104_729) % 20_000,
                    "lastUpdateDate": last_update.isoformat(),
                    "summaryTypeCode": summary_type,
                }
            )
    return rows


def symbol_rows(rows: list[Row], summary_type: str) -> list[Row]:
    """FINRA's per-symbol totals (ATS_W_SMBL / OTC_W_SMBL) that agree with ``rows``."""
    totals: dict[str, Row] = {}
    for row in rows:
        total = totals.setdefault(
            row["issueSymbolIdentifier"],
            {
                **{k: v for k, v in row.items() if k not in ("MPID", "marketParticipantName")},
                "summaryTypeCode": summary_type,
                "totalWeeklyShareQuantity": 0,
                "totalWeeklyTradeCount": 0,
            },
        )
        total["totalWeeklyShareQuantity"] += row["totalWeeklyShareQuantity"]
        total["totalWeeklyTradeCount"] += row["totalWeeklyTradeCount"]
    return list(totals.values())


@dataclass
class Published:
    """One (dataset, week) as FINRA serves it now."""

    rows: list[Row]
    last_update: date
    revision: int = 0
    withdrawn: bool = False


@dataclass
class SeenRequest:
    at: float  # time.monotonic() in this process, on arrival
    method: str
    dataset: str
    body: Any
    status: int = 0


@dataclass
class Throttle:
    """Answer 429 (with ``Retry-After``) once more than ``limit`` requests arrived in
    the last ``per`` seconds: FINRA's own enforcement of its published rate."""

    limit: int
    per: float = 1.0
    retry_after: str = "1"
    times: deque[float] = field(default_factory=deque)


class FakeFinraAPI:
    """FINRA's Query API: two windows, download details, paging, 429s, test controls.

    ``today`` fixes the date the windows roll from (default: the real UTC date).
    """

    def __init__(self, *, today: date | None = None, page_headers: str = "lower") -> None:
        self.today = today or datetime.now(UTC).date()
        self.page_headers = page_headers  # "lower" (2026 recording) or "capitalised" (2023)
        #: Weeks before this carry FINRA's older tier descriptions ("Tier 1", ...).
        self.old_descriptions_before = OLD_DESCRIPTIONS_BEFORE
        self._lock = threading.Lock()
        self.published: dict[Key, Published] = {}
        self.requests: list[SeenRequest] = []
        self.fail_next: deque[tuple[int, str | None]] = deque()
        self.throttle: Throttle | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeFinraAPI:
        self._server = make_server("127.0.0.1", 0, self._wsgi, threaded=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_port}"

    # -- test controls ------------------------------------------------------------------

    def recent_start(self) -> date:
        """The oldest weekStartDate weeklySummary still holds."""
        return self.today - timedelta(days=RECENT_DAYS)

    def historic_start(self) -> date:
        return self.today - timedelta(days=RECENT_DAYS + HISTORIC_DAYS)

    def window_of(self, week: date) -> str | None:
        """Which dataset serves ``week`` today (``None``: rolled out of both)."""
        if week >= self.recent_start():
            return RECENT
        return HISTORIC if week >= self.historic_start() else None

    def publish(
        self,
        week: date,
        *,
        tiers: tuple[str, ...] = TIERS,
        ats: tuple[bool, ...] = (True, False),
        symbols: int = 3,
        delay_days: int | None = None,
    ) -> None:
        """Publish the per-venue datasets (and their symbol totals) for ``week``;
        ``lastUpdateDate`` is the tier's publication delay after the week."""
        for tier in map(tier_identifier, tiers):
            days = delay_days if delay_days is not None else (14 if tier == "T1" else 28)
            for flag in ats:
                ftype = firm_type(flag)
                last_update = week + timedelta(days=days)
                rows = firm_rows(
                    ftype,
                    tier,
                    week,
                    symbols=symbols,
                    revision=0,
                    last_update=last_update,
                    old_descriptions_before=self.old_descriptions_before,
                )
                self._set(ftype, tier, week, Published(rows, last_update))

    def republish(
        self, week: date, *, tier: str, ats: bool, last_update: date | None = None
    ) -> list[Row]:
        """FINRA corrects the week: new volumes and a newer ``lastUpdateDate``."""
        ftype, tier = firm_type(ats), tier_identifier(tier)
        with self._lock:
            old = self.published[(ftype, tier, week)]
        last_update = last_update or old.last_update + timedelta(days=7)
        symbols = len({r["issueSymbolIdentifier"] for r in old.rows})
        rows = firm_rows(
            ftype,
            tier,
            week,
            symbols=symbols,
            revision=old.revision + 1,
            last_update=last_update,
            old_descriptions_before=self.old_descriptions_before,
        )
        self._set(ftype, tier, week, Published(rows, last_update, old.revision + 1))
        return rows

    def withdraw(self, week: date, *, tiers: tuple[str, ...] = TIERS) -> None:
        """The week leaves FINRA's windows (as when the historic window rolls past it)."""
        with self._lock:
            for (_, tier, when), item in self.published.items():
                if when == week and tier in map(tier_identifier, tiers):
                    item.withdrawn = True

    def rows(self, week: date, *, tier: str, ats: bool) -> list[Row]:
        """The per-venue rows FINRA serves for a (dataset, week) now."""
        with self._lock:
            return list(self.published[(firm_type(ats), tier_identifier(tier), week)].rows)

    def served_keys(self) -> set[tuple[str, bool, date]]:
        """(tier, ats, week) of every per-venue dataset-week served now (tier T1/T2/OTC)."""
        with self._lock:
            return {
                ("OTC" if tier == "OTCE" else tier, ftype.startswith("ATS"), week)
                for (ftype, tier, week), item in self.published.items()
                if ftype in FIRM_TYPES and self._served(item, week)
            }

    def fail(self, *replies: tuple[int, str | None]) -> None:
        """Answer the next requests with these (status, Retry-After) pairs."""
        with self._lock:
            self.fail_next.extend(replies)

    def limit_rate(self, limit: int, per: float = 1.0) -> None:
        self.throttle = Throttle(limit, per)

    def data_requests(self) -> list[SeenRequest]:
        with self._lock:
            return list(self.requests)

    # -- serving ------------------------------------------------------------------------

    def _set(self, ftype: str, tier: str, week: date, item: Published) -> None:
        stype = SYMBOL_TYPES[FIRM_TYPES.index(ftype)]
        totals = Published(symbol_rows(item.rows, stype), item.last_update, item.revision)
        with self._lock:
            self.published[(ftype, tier, week)] = item
            self.published[(stype, tier, week)] = totals

    def _served(self, item: Published, week: date) -> bool:
        return not item.withdrawn and self.window_of(week) is not None

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        response = self._handle(request)
        return response(environ, start_response)

    def _handle(self, request: Request) -> Response:
        dataset = request.path.removeprefix(PATH_PREFIX)
        body: Any = None
        if request.method == "POST":
            try:
                body = json.loads(request.get_data() or b"null")
            except ValueError:
                body = None
        seen = SeenRequest(time.monotonic(), request.method, dataset, body)
        with self._lock:
            self.requests.append(seen)
            scripted = self.fail_next.popleft() if self.fail_next else None
            throttled = self._throttled(seen.at)
        if scripted is not None or throttled:
            status, retry_after = scripted or (429, self.throttle.retry_after)  # type: ignore[union-attr]
            seen.status = status
            headers = [("Retry-After", retry_after)] if retry_after else []
            return self._error(status, "Too Many Requests" if status == 429 else "error", headers)
        if request.method == "GET":
            body = {}  # FINRA ignores filters sent with GET: an unfiltered query
        elif not isinstance(body, dict):
            seen.status = 400
            return self._error(400, "request body must be a JSON object")
        response = self._query(dataset, body)
        seen.status = response.status_code
        return response

    def _throttled(self, now: float) -> bool:
        if self.throttle is None:
            return False
        times = self.throttle.times
        while times and times[0] <= now - self.throttle.per:
            times.popleft()
        if len(times) >= self.throttle.limit:
            return True
        times.append(now)
        return False

    @staticmethod
    def _error(status: int, message: str, headers: list[tuple[str, str]] | None = None) -> Response:
        payload = json.dumps({"statusCode": status, "message": message})
        return Response(
            payload, status=status, headers=headers or [], content_type="application/json"
        )

    def _query(self, dataset: str, query: dict[str, Any]) -> Response:
        if dataset not in (RECENT, HISTORIC, DETAILS):
            return self._error(404, f"dataset {dataset} not found")
        limit, offset = query.get("limit", 1000), query.get("offset", 0)
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            return self._error(400, f"limit must be between 1 and {MAX_LIMIT}")
        if not isinstance(offset, int) or offset < 0:
            return self._error(400, "offset must be a non-negative integer")
        compare = query.get("compareFilters") or []
        ranges = query.get("dateRangeFilters") or []
        if dataset == HISTORIC:
            for flt in [*compare, *ranges]:
                if flt.get("fieldName") not in HISTORIC_FILTERABLE:
                    return self._error(
                        400, f"{flt.get('fieldName')} is not filterable on {HISTORIC}"
                    )
        rows = self._rows(dataset, query, compare, ranges)
        if isinstance(rows, Response):
            return rows
        for sort_field in reversed(query.get("sortFields") or []):
            name = sort_field.lstrip("-")
            rows.sort(key=lambda r, n=name: str(r.get(n, "")), reverse=sort_field.startswith("-"))
        total = len(rows)
        if total == 0:
            return Response(status=204)
        fields = query.get("fields")
        page = rows[offset : offset + limit]
        if fields:
            page = [{f: r[f] for f in fields if f in r} for r in page]
        payload = gzip.compress(json.dumps(page).encode())
        headers = [*self._paging_headers(total, offset, limit), ("Content-Encoding", "gzip")]
        return Response(payload, status=200, headers=headers, content_type="application/json")

    def _rows(
        self, dataset: str, query: dict[str, Any], compare: list[Any], ranges: list[Any]
    ) -> list[Row] | Response:
        with self._lock:
            items = list(self.published.items())
        if dataset == DETAILS:
            rows: list[Row] = [
                {
                    "weekStartDate": week.isoformat(),
                    "tierIdentifier": tier,
                    "summaryTypeCode": stype,
                    "lastUpdateDate": item.last_update.isoformat(),
                }
                for (stype, tier, week), item in items
                if self._served(item, week)
            ]
        else:
            rows = [
                row
                for (_, _, week), item in items
                if self._served(item, week) and self.window_of(week) == dataset
                for row in item.rows
            ]
        for flt in compare:
            if flt.get("compareType") != "EQUAL":
                return self._error(400, f"unsupported compareType {flt.get('compareType')}")
            name, value = flt.get("fieldName"), flt.get("fieldValue")
            if name == "weekStartDate" and dataset == HISTORIC:
                continue  # reported: ignored there; weekStartDate needs dateRangeFilters
            rows = [r for r in rows if str(r.get(name)) == str(value)]
        for flt in ranges:
            name, start, end = flt.get("fieldName"), flt.get("startDate"), flt.get("endDate")
            rows = [r for r in rows if (start or "") <= str(r.get(name)) <= (end or "9999")]
        if (
            dataset == HISTORIC
            and rows
            and not any(f.get("fieldName") == "weekStartDate" for f in ranges)
        ):
            oldest = min(r["weekStartDate"] for r in rows)  # unfiltered: the oldest partition
            rows = [r for r in rows if r["weekStartDate"] == oldest]
        return rows

    def _paging_headers(self, total: int, offset: int, limit: int) -> list[tuple[str, str]]:
        names = ("Record-Total", "Record-Offset", "Record-Limit", "Record-Max-Limit")
        values = (total, offset, limit, MAX_LIMIT)
        if self.page_headers == "lower":
            names = tuple(n.lower() for n in names)
        return [(n, str(v)) for n, v in zip(names, values, strict=True)]
