"""HTTP client for FINRA's Query API (OTC weekly transparency data)."""

from __future__ import annotations

import email.utils
import json
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Self

import httpx
import pybreaker
import tenacity
from tenacity.wait import wait_base

from otc.finra.breaker import breaker_for, open_until
from otc.finra.config import FinraClientConfig
from otc.finra.errors import (
    FinraHTTPError,
    FinraProtocolError,
    FinraTransportError,
    FinraUnavailable,
)
from otc.finra.ratelimit import RateLimiter, process_rate_limiter
from spine.text import quote

logger = logging.getLogger(__name__)

WEEKLY_SUMMARY_PATH = "/data/group/otcMarket/name/weeklySummary"
WEEKLY_SUMMARY_HISTORIC_PATH = "/data/group/otcMarket/name/weeklySummaryHistoric"
WEEKLY_DOWNLOAD_DETAILS_PATH = "/data/group/otcMarket/name/weeklyDownloadDetails"

#: Market Spine tier code (or FINRA's own) -> the ``tierIdentifier`` FINRA expects.
TIER_IDENTIFIERS = {"T1": "T1", "T2": "T2", "OTC": "OTCE", "OTCE": "OTCE"}
SUMMARY_TYPES = frozenset({"ATS_W_SMBL", "OTC_W_SMBL", "ATS_W_SMBL_FIRM", "OTC_W_SMBL_FIRM"})

#: Per-venue fields: everything the download file has, plus the week and codes.
DEFAULT_WEEKLY_SUMMARY_FIELDS: tuple[str, ...] = (
    "weekStartDate",
    "issueSymbolIdentifier",
    "issueName",
    "tierIdentifier",
    "tierDescription",
    "MPID",
    "marketParticipantName",
    "totalWeeklyShareQuantity",
    "totalWeeklyTradeCount",
    "lastUpdateDate",
    "summaryTypeCode",
)

#: Offset paging is only stable over a fixed order; these keys are unique per week.
_SUMMARY_SORT_FIELDS = ("issueSymbolIdentifier", "MPID")
#: weeklySummary holds the weeks that started at most this many days ago; older weeks
#: are in weeklySummaryHistoric (about four more years).
RECENT_WINDOW_DAYS = 365
#: Weeks this close to the window's edge are asked of both windows, in turn, until
#: one has rows: FINRA's rolling boundary is not exact to the day.
WINDOW_MARGIN_DAYS = 28

Row = dict[str, Any]


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    Returns ``None`` when absent or unparseable; a date in the past gives 0.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


class RetryAfterOrBackoff(wait_base):
    """Backoff, stretched to the server's ``Retry-After`` when it asks for longer; capped."""

    def __init__(self, backoff: wait_base, cap: float) -> None:
        self.backoff = backoff
        self.cap = cap

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        wait = self.backoff(retry_state)
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None and outcome.failed else None
        if isinstance(exc, FinraHTTPError) and exc.retry_after is not None:
            wait = max(wait, exc.retry_after)
        return min(wait, self.cap)


def _is_retryable(exc: BaseException) -> bool:
    if isinstance(exc, FinraHTTPError):
        return exc.retryable
    return isinstance(exc, httpx.TransportError)  # includes every httpx timeout


def _log_retry(retry_state: tenacity.RetryCallState) -> None:
    exc = retry_state.outcome.exception() if retry_state.outcome else None
    wait = retry_state.next_action.sleep if retry_state.next_action else 0.0
    logger.warning(
        "FINRA request attempt %d failed (%s); retrying in %.2fs",
        retry_state.attempt_number,
        exc,
        wait,
        extra={"attempt": retry_state.attempt_number, "retry_in": wait},
    )


def _http_error(response: httpx.Response) -> FinraHTTPError:
    retry_after = None
    if response.status_code in (429, 503):
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    try:
        excerpt = response.text
    except (UnicodeDecodeError, LookupError):
        excerpt = repr(response.content[:100])
    return FinraHTTPError(
        response.status_code,
        " ".join(excerpt.split()),
        url=str(response.request.url),
        retry_after=retry_after,
    )


@dataclass(frozen=True, slots=True)
class _Page:
    """One decoded page and its paging headers (all ``None`` for 204 / empty body)."""

    rows: list[Row]
    total: int | None = None
    offset: int | None = None
    limit: int | None = None


def _int_header(headers: httpx.Headers, name: str, where: str, *, required: bool) -> int | None:
    raw = headers.get(name)  # httpx headers are case-insensitive: Record-Total == record-total
    if raw is None:
        if required:
            raise FinraProtocolError(f"missing {name} header in the response to {where}")
        return None
    try:
        value = int(raw.strip())
    except ValueError:
        raise FinraProtocolError(
            f"{name} header {quote(raw)} is not an integer ({where})"
        ) from None
    if value < 0:
        raise FinraProtocolError(f"{name} header {quote(raw)} is negative ({where})")
    return value


def _decode_page(response: httpx.Response, where: str) -> _Page:
    """Check one successful response and turn it into rows plus paging headers."""
    if response.status_code == 204 or not response.content.strip():
        return _Page(rows=[])
    if response.status_code != 200:
        raise FinraProtocolError(f"unexpected HTTP {response.status_code} for {where}")
    try:
        body = json.loads(response.content)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise FinraProtocolError(f"response to {where} is not valid JSON: {exc}") from None
    if not isinstance(body, list):
        raise FinraProtocolError(
            f"response to {where} is a JSON {type(body).__name__}, expected an array of objects"
        )
    for index, row in enumerate(body):
        if not isinstance(row, dict):
            raise FinraProtocolError(
                f"response to {where}: item {index} is a JSON {type(row).__name__}, "
                "expected an object"
            )
    headers = response.headers
    return _Page(
        rows=body,
        total=_int_header(headers, "Record-Total", where, required=True),
        offset=_int_header(headers, "Record-Offset", where, required=False),
        limit=_int_header(headers, "Record-Limit", where, required=False),
    )


def _equal(field: str, value: str) -> dict[str, str]:
    return {"compareType": "EQUAL", "fieldName": field, "fieldValue": value}


def _tier_identifier(tier: str) -> str:
    code = TIER_IDENTIFIERS.get(tier.strip().upper()) if isinstance(tier, str) else None
    if code is None:
        raise ValueError(f"tier={tier!r}: must be one of {', '.join(TIER_IDENTIFIERS)}")
    return code


def _summary_type(summary_type: str) -> str:
    code = summary_type.strip().upper() if isinstance(summary_type, str) else ""
    if code not in SUMMARY_TYPES:
        raise ValueError(
            f"summary_type={summary_type!r}: must be one of {', '.join(sorted(SUMMARY_TYPES))}"
        )
    return code


@dataclass(frozen=True, slots=True)
class PublishedWeek:
    """A week FINRA lists for a dataset, and its ``lastUpdateDate`` (``None`` if not given)."""

    week: date
    last_update: date | None


@dataclass(slots=True)
class _WeekQuery:
    week: date
    tier: str
    summary_type: str
    symbol: str | None
    fields: list[str]


def _iso_date(raw: object, name: str, number: int) -> date:
    try:
        return date.fromisoformat(raw)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FinraProtocolError(
            f"weeklyDownloadDetails row {number}: {name} {quote(raw)} is not a YYYY-MM-DD date"
        ) from None


def _check_week(page: list[Row], day: str, number: int) -> int:
    """A row of another week means the week filter was not applied: fail, never file
    it under the week asked for. Returns the number of the page's last row."""
    for offset, row in enumerate(page, start=1):
        value = row.get("weekStartDate", day)
        if value != day:
            raise FinraProtocolError(
                f"API row {number + offset}: weekStartDate is {quote(value)}, "
                f"but week {day} was requested"
            )
    return number + len(page)


def _utc_today() -> date:
    return datetime.now(UTC).date()


class FinraClient:
    """Synchronous client for FINRA's Query API; thread-safe, one per task is fine.

    ``transport`` replaces the network (e.g. ``httpx.MockTransport``). ``breaker`` and
    ``rate_limiter`` default to the process-wide ones for ``config``; ``sleep``
    is what retries wait with (tests pass a recorder instead of sleeping); ``today``
    is the date the 12-month window is counted back from.
    """

    def __init__(
        self,
        config: FinraClientConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        breaker: pybreaker.CircuitBreaker | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
        today: Callable[[], date] = _utc_today,
    ) -> None:
        self.config = config
        self.today = today
        self.breaker = breaker if breaker is not None else breaker_for(config)
        self.rate_limiter = (
            rate_limiter
            if rate_limiter is not None
            else process_rate_limiter(config.requests_per_second, config.redis_url)
        )
        self._http = httpx.Client(
            base_url=config.base_url,
            transport=transport,
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            headers={"Accept": "application/json", "User-Agent": "market-spine-finra-client"},
        )
        self._retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(config.max_retries + 1),
            wait=RetryAfterOrBackoff(
                tenacity.wait_random_exponential(
                    multiplier=config.backoff_base, max=config.backoff_max
                ),
                cap=config.backoff_max,
            ),
            retry=tenacity.retry_if_exception(_is_retryable),
            sleep=sleep,
            before_sleep=_log_retry,
            reraise=True,
        )

    # -- public API ---------------------------------------------------------------------

    def iter_weekly_summary(
        self,
        *,
        week: date,
        tier: str,
        summary_type: str,
        symbol: str | None = None,
        fields: Sequence[str] | None = None,
    ) -> Iterator[list[Row]]:
        """Yield one week's rows of a dataset, one page (list of row dicts) at a time.

        ``week`` is the Monday FINRA calls ``weekStartDate``; ``tier`` is T1, T2 or
        OTC (``OTCE`` accepted); ``summary_type`` is ATS_W_SMBL, OTC_W_SMBL,
        ATS_W_SMBL_FIRM or OTC_W_SMBL_FIRM. A week of the last 12 months is asked of
        ``weeklySummary``, an older one of ``weeklySummaryHistoric`` (and the other
        window when the first has nothing, as at the boundary). Pages are fetched
        lazily, so only one is held at a time. Raises ``ValueError`` for bad arguments
        (before any request) and :class:`~otc.finra.errors.FinraError` subclasses for
        FINRA trouble.
        """
        if isinstance(week, datetime) or not isinstance(week, date):
            raise ValueError(f"week={week!r}: must be a date")
        if week.weekday() != 0:
            raise ValueError(f"week={week.isoformat()}: FINRA weeks start on a Monday")
        query = _WeekQuery(
            week=week,
            tier=_tier_identifier(tier),
            summary_type=_summary_type(summary_type),
            symbol=None,
            fields=list(DEFAULT_WEEKLY_SUMMARY_FIELDS if fields is None else fields),
        )
        if symbol is not None:
            if not symbol.strip():
                raise ValueError("symbol: must not be blank")
            query.symbol = symbol.strip().upper()
        if not query.fields or not all(isinstance(f, str) and f for f in query.fields):
            raise ValueError(f"fields={fields!r}: must be a non-empty list of field names")
        return self._both_windows(query)

    def windows_for(self, week: date) -> tuple[str, ...]:
        """The datasets (paths) to ask for ``week``, in order: the recent one for the
        last 12 months, the historic one before, and near the boundary both (the
        recent one first)."""
        recent_start = self.today() - timedelta(days=RECENT_WINDOW_DAYS)
        if week >= recent_start + timedelta(days=WINDOW_MARGIN_DAYS):
            return (WEEKLY_SUMMARY_PATH,)
        if week < recent_start - timedelta(days=WINDOW_MARGIN_DAYS):
            return (WEEKLY_SUMMARY_HISTORIC_PATH,)
        return (WEEKLY_SUMMARY_PATH, WEEKLY_SUMMARY_HISTORIC_PATH)

    def published_weeks(self, *, tier: str, summary_type: str) -> list[PublishedWeek]:
        """The weeks FINRA publishes for a tier and dataset (``weeklyDownloadDetails``),
        newest first, each with its ``lastUpdateDate`` when FINRA gives one."""
        query = {  # every field: lastUpdateDate where FINRA lists it
            "sortFields": ["-weekStartDate"],
            "compareFilters": [
                _equal("summaryTypeCode", _summary_type(summary_type)),
                _equal("tierIdentifier", _tier_identifier(tier)),
            ],
        }
        weeks: dict[date, date | None] = {}
        number = 0
        for page in self._pages(WEEKLY_DOWNLOAD_DETAILS_PATH, query):
            for row in page:
                number += 1
                week = _iso_date(row.get("weekStartDate"), "weekStartDate", number)
                updated = row.get("lastUpdateDate")
                last = None if not updated else _iso_date(updated, "lastUpdateDate", number)
                if week not in weeks or (last and (weeks[week] or last) <= last):
                    weeks[week] = last
        return [PublishedWeek(w, weeks[w]) for w in sorted(weeks, reverse=True)]

    def list_weeks(self, *, tier: str, summary_type: str) -> list[date]:
        """Published ``weekStartDate`` values for a tier and summary type, newest first."""
        query = {
            "fields": ["weekStartDate"],
            "sortFields": ["-weekStartDate"],
            "compareFilters": [
                _equal("summaryTypeCode", _summary_type(summary_type)),
                _equal("tierIdentifier", _tier_identifier(tier)),
            ],
        }
        weeks: list[date] = []
        for page in self._pages(WEEKLY_DOWNLOAD_DETAILS_PATH, query):
            for row in page:
                weeks.append(_iso_date(row.get("weekStartDate"), "weekStartDate", len(weeks) + 1))
        return sorted(weeks, reverse=True)

    def close(self) -> None:
        """Close the HTTP connection pool (the shared breaker and limiter live on)."""
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- windows --------------------------------------------------------------------------

    def _both_windows(self, query: _WeekQuery) -> Iterator[list[Row]]:
        for path in self.windows_for(query.week):
            found = False
            for page in self._window_pages(path, query):
                found = True
                yield page
            if found:
                return

    def _window_pages(self, path: str, query: _WeekQuery) -> Iterator[list[Row]]:
        """One window's pages. ``weeklySummary`` takes the week as a compareFilter (as
        recorded); ``weeklySummaryHistoric`` ignores that (answering with its oldest
        week) and needs ``dateRangeFilters``, and filters by week and tier only, so
        there the dataset and symbol are picked out of its pages here."""
        day = query.week.isoformat()
        body: dict[str, Any] = {}
        local: dict[str, str] = {}
        if path == WEEKLY_SUMMARY_HISTORIC_PATH:
            body["dateRangeFilters"] = [
                {"fieldName": "weekStartDate", "startDate": day, "endDate": day}
            ]
            filters = [_equal("tierIdentifier", query.tier)]
            local["summaryTypeCode"] = query.summary_type
            if query.symbol is not None:
                local["issueSymbolIdentifier"] = query.symbol
        else:
            filters = [
                _equal("weekStartDate", day),
                _equal("tierIdentifier", query.tier),
                _equal("summaryTypeCode", query.summary_type),
            ]
            if query.symbol is not None:
                filters.append(_equal("issueSymbolIdentifier", query.symbol))
        fields = list(query.fields)
        if local:
            fields += [f for f in ("weekStartDate", *local) if f not in fields]
        body.update(fields=fields, compareFilters=filters)
        sort_fields = [f for f in ("summaryTypeCode", *_SUMMARY_SORT_FIELDS) if f in fields]
        if not local:
            sort_fields = [f for f in sort_fields if f != "summaryTypeCode"]
        if sort_fields:
            body["sortFields"] = sort_fields
        number = 0
        for page in self._pages(path, body):
            number = _check_week(page, day, number)
            if local:
                page = [r for r in page if all(r.get(k) == v for k, v in local.items())]
            if page:
                yield page

    # -- paging ---------------------------------------------------------------------------

    def _pages(self, path: str, query: dict[str, Any]) -> Iterator[list[Row]]:
        """Page through ``path`` until ``Record-Total`` rows have arrived, checking each page.

        A generator: nothing is requested until the caller asks for the first page.
        """
        requested = self.config.page_size
        offset = 0
        total: int | None = None
        page_number = 0
        while True:
            page_number += 1
            where = f"{path} page {page_number} (offset {offset})"
            page = self._fetch_page(path, {**query, "limit": requested, "offset": offset}, where)
            if page.total is None:  # 204 No Content or an empty body: nothing (more) here
                if total is not None and offset < total:
                    raise FinraProtocolError(
                        f"{where}: no content, but Record-Total promised {total} rows"
                    )
                return
            if total is None:
                total = page.total
            elif page.total != total:
                raise FinraProtocolError(
                    f"{where}: Record-Total changed from {total} to {page.total} while paging"
                )
            if page.offset is not None and page.offset != offset:
                raise FinraProtocolError(
                    f"{where}: Record-Offset is {page.offset}, requested offset {offset}"
                )
            count = len(page.rows)
            limit = requested if page.limit is None else min(requested, page.limit)
            if count > limit:
                raise FinraProtocolError(
                    f"{where}: {count} rows, more than the page limit of {limit}"
                )
            if offset + count > total:
                raise FinraProtocolError(
                    f"{where}: {count} rows take the count to {offset + count}, "
                    f"past Record-Total {total}"
                )
            expected = min(limit, total - offset)
            if count < expected:
                raise FinraProtocolError(
                    f"{where}: {count} rows, expected {expected} "
                    f"(Record-Total {total}, page limit {limit})"
                )
            offset += count
            logger.debug("FINRA %s: %d rows (%d of %d)", where, count, offset, total)
            if count:
                yield page.rows
            if offset >= total:
                return

    def _fetch_page(self, path: str, body: dict[str, Any], where: str) -> _Page:
        """One logical request: breaker -> retries -> rate limiter -> HTTP, then checks."""

        def attempt() -> httpx.Response:
            self.rate_limiter.acquire()
            response = self._http.post(path, json=body)
            if response.status_code >= 400:
                raise _http_error(response)
            return response

        def logical_request() -> _Page:
            retrying = self._retrying.copy()
            try:
                response = retrying(attempt)
            except httpx.DecodingError as exc:
                raise FinraProtocolError(
                    f"response to {where} could not be decoded: {exc}"
                ) from exc
            except httpx.HTTPError as exc:
                attempts = retrying.statistics.get("attempt_number", 1)
                raise FinraTransportError(
                    f"FINRA API request {where} failed after {attempts} attempt(s): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            return _decode_page(response, where)

        try:
            return self.breaker.call(logical_request)
        except pybreaker.CircuitBreakerError:
            raise FinraUnavailable(open_until(self.breaker)) from None
