"""FINRA Query API client against a local fake FINRA (see ``finra_server``).

Nothing here needs Django; the Redis test uses database 9 and only its own keys.
"""

from __future__ import annotations

import importlib
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pybreaker
import pytest
import redis
from prometheus_client import REGISTRY

import otc.finra.breaker as breaker_module
from otc.finra import (
    DEFAULT_WEEKLY_SUMMARY_FIELDS,
    FinraClient,
    FinraClientConfig,
    FinraHTTPError,
    FinraProtocolError,
    FinraTransportError,
    FinraUnavailable,
    RateLimiter,
    api_rows_to_lines,
    breaker_status,
    build_breaker,
    process_rate_limiter,
)
from otc.finra.client import WEEKLY_SUMMARY_PATH, parse_retry_after
from otc.finra.rows import DOWNLOAD_COLUMNS, HEADER_LINE
from tests.otc import finra_server as fake

FakeFinra, Headers, Reply = fake.FakeFinra, fake.Headers, fake.Reply
load_sample, week_rows, weekly_rows = fake.load_sample, fake.week_rows, fake.weekly_rows

REDIS_TEST_URL = "redis://127.0.0.1:6379/9"
WEEK = date(2025, 12, 1)  # a Monday
#: The clients' today: WEEK is in weeklySummary's 12 months, well clear of its edge.
TODAY = WEEK + timedelta(days=35)
GAUGE = "spine_finra_circuit_state"


# -- fixtures -------------------------------------------------------------------------------


class SleepRecorder:
    """Stands in for time.sleep in tenacity: records the waits, sleeps not at all."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def make_client(finra: FakeFinra, sleeps: SleepRecorder) -> Any:
    """Build a client on the fake server with a fresh in-memory breaker and fast defaults."""
    clients: list[FinraClient] = []

    def factory(
        *,
        breaker: pybreaker.CircuitBreaker | None = None,
        rate_limiter: RateLimiter | None = None,
        today: date = TODAY,
        **overrides: Any,
    ) -> FinraClient:
        settings: dict[str, Any] = {
            "base_url": finra.base_url,
            "connect_timeout": 1.0,
            "read_timeout": 2.0,
            "backoff_base": 0.01,
            "backoff_max": 10.0,
            "requests_per_second": 1000.0,
        }
        config = FinraClientConfig(**{**settings, **overrides})
        client = FinraClient(
            config,
            breaker=breaker
            or build_breaker(
                fail_max=config.breaker_fail_max, reset_timeout=config.breaker_reset_timeout
            ),
            rate_limiter=rate_limiter or process_rate_limiter(config.requests_per_second),
            sleep=sleeps,
            today=lambda: today,
        )
        clients.append(client)
        return client

    yield factory
    for client in clients:
        client.close()


def summary(client: FinraClient, **kwargs: Any) -> list[list[dict[str, Any]]]:
    """All pages of a weeklySummary query (T1 per-venue ATS by default)."""
    args = {"week": WEEK, "tier": "T1", "summary_type": "ATS_W_SMBL_FIRM", **kwargs}
    return list(client.iter_weekly_summary(**args))


def serve_week(finra: FakeFinra, count: int) -> list[dict[str, Any]]:
    rows = weekly_rows(count, week=WEEK)
    finra.serve("weeklySummary", rows)
    return rows


def set_header(headers: Headers, name: str, value: str | None) -> Headers:
    """Replace (or with ``None`` drop) a header, whatever its case."""
    kept = [(k, v) for k, v in headers if k.lower() != name.lower()]
    return kept if value is None else [*kept, (name, value)]


def gauge_value() -> float | None:
    return REGISTRY.get_sample_value(GAUGE)


# -- paging and decoding --------------------------------------------------------------------


def test_multi_page_week_arrives_once_and_in_order(finra: FakeFinra, make_client: Any) -> None:
    rows = serve_week(finra, 12_345)
    client = make_client(page_size=5000)

    pages = client.iter_weekly_summary(week=WEEK, tier="T1", summary_type="ATS_W_SMBL_FIRM")
    first = next(pages)
    assert finra.request_count == 1, "pages are fetched lazily, one at a time"
    received = [first, *pages]

    assert [len(p) for p in received] == [5000, 5000, 2345]
    assert [row for page in received for row in page] == rows
    assert [r.body["offset"] for r in finra.requests] == [0, 5000, 10000]
    assert {r.body["limit"] for r in finra.requests} == {5000}
    assert {r.dataset for r in finra.requests} == {"weeklySummary"}
    response_headers = finra.server.log[-1][1].headers
    assert response_headers["Content-Encoding"] == "gzip"
    body = finra.requests[0].body
    assert body["fields"] == list(DEFAULT_WEEKLY_SUMMARY_FIELDS)
    assert body["compareFilters"] == [
        {"compareType": "EQUAL", "fieldName": "weekStartDate", "fieldValue": "2025-12-01"},
        {"compareType": "EQUAL", "fieldName": "tierIdentifier", "fieldValue": "T1"},
        {"compareType": "EQUAL", "fieldName": "summaryTypeCode", "fieldValue": "ATS_W_SMBL_FIRM"},
    ]
    assert body["sortFields"] == ["issueSymbolIdentifier", "MPID"]


@pytest.mark.parametrize(
    ("style", "wire_name"), [("capitalised", "Record-Total"), ("lower", "record-total")]
)
def test_paging_headers_match_in_either_case(
    finra: FakeFinra, make_client: Any, style: str, wire_name: str
) -> None:
    finra.header_style = style  # type: ignore[assignment]
    rows = serve_week(finra, 7)
    raw = httpx.post(
        finra.base_url + WEEKLY_SUMMARY_PATH, json={"limit": 3, "offset": 0}
    ).headers.raw
    assert wire_name.encode() in [name for name, _ in raw], "the fake sends the casing asked"

    pages = summary(make_client(page_size=3))

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [row for page in pages for row in page] == rows


@pytest.mark.parametrize(
    "recording", ["weeklySummary_response", "weeklySummary_response_lowercase_headers"]
)
def test_recorded_weekly_summary_responses(
    finra: FakeFinra, make_client: Any, recording: str
) -> None:
    recorded_request = load_sample("weeklySummary_request")["body"]
    finra.reply_next(Reply.from_recording(recording))

    pages = summary(
        make_client(today=date(2023, 11, 9)),  # the day of the recording
        week=date(2023, 10, 16),
        summary_type="ATS_W_SMBL",
        symbol="aapl",
        fields=recorded_request["fields"],
    )

    assert pages == [load_sample(recording)["body"]]
    sent = finra.requests[0].body
    assert sent["fields"] == recorded_request["fields"]
    assert sent["limit"] == recorded_request["limit"]
    assert sent["compareFilters"] == [
        {k: v for k, v in f.items() if k != "description"}
        for f in recorded_request["compareFilters"]
    ]


def test_no_content_yields_no_rows(finra: FakeFinra, make_client: Any) -> None:
    client = make_client()
    assert summary(client) == []  # no rows match: the fake, like FINRA, answers 204
    assert finra.server.log[-1][1].status_code == 204

    finra.reply_next(Reply(status=200, body=b""))
    assert summary(client) == []
    assert finra.request_count == 2


def test_tier_otc_is_sent_as_otce_and_bad_arguments_send_nothing(
    finra: FakeFinra, make_client: Any
) -> None:
    client = make_client()
    summary(client, tier="OTC", summary_type="otc_w_smbl")
    filters = {f["fieldName"]: f["fieldValue"] for f in finra.requests[0].body["compareFilters"]}
    assert filters["tierIdentifier"] == "OTCE"
    assert filters["summaryTypeCode"] == "OTC_W_SMBL"

    bad_calls: list[dict[str, Any]] = [
        {"tier": "T3"},
        {"summary_type": "ATS_W_FIRM"},
        {"week": date(2025, 12, 3)},  # a Wednesday
        {"week": datetime(2025, 12, 1, tzinfo=UTC)},
        {"fields": []},
        {"symbol": "  "},
    ]
    for kwargs in bad_calls:
        with pytest.raises(ValueError):
            summary(client, **kwargs)
    assert finra.request_count == 1


# -- retries --------------------------------------------------------------------------------


@pytest.mark.parametrize("as_date", [False, True], ids=["seconds", "http-date"])
def test_429_waits_as_long_as_retry_after_says(
    finra: FakeFinra, make_client: Any, sleeps: SleepRecorder, as_date: bool
) -> None:
    rows = serve_week(finra, 3)
    retry_after = (
        format_datetime(datetime.now(UTC) + timedelta(seconds=7), usegmt=True) if as_date else "7"
    )
    finra.reply_next(Reply(status=429, headers=[("Retry-After", retry_after)], body={"m": "slow"}))

    pages = summary(make_client())

    assert pages == [rows]
    assert finra.request_count == 2
    assert len(sleeps.waits) == 1
    assert 5.5 <= sleeps.waits[0] <= 7.0  # HTTP dates have whole-second resolution


def test_retry_after_is_capped_at_backoff_max(
    finra: FakeFinra, make_client: Any, sleeps: SleepRecorder
) -> None:
    serve_week(finra, 1)
    finra.reply_next(Reply(status=503, headers=[("Retry-After", "3600")]))
    summary(make_client(backoff_max=4.0))
    assert sleeps.waits == [4.0]


def test_transient_503s_are_retried_with_backoff(
    finra: FakeFinra, make_client: Any, sleeps: SleepRecorder
) -> None:
    rows = serve_week(finra, 5)
    finra.reply_next(Reply(status=503, body=b"busy"), Reply(status=502), Reply(status=500))

    assert summary(make_client(max_retries=3)) == [rows]
    assert finra.request_count == 4
    # Full-jitter exponential backoff from 0.01 s: each wait within its doubling window.
    assert len(sleeps.waits) == 3
    for n, wait in enumerate(sleeps.waits):
        assert 0 <= wait <= 0.01 * 2**n


@pytest.mark.parametrize("status", [400, 403, 404])
def test_client_errors_are_never_retried(
    finra: FakeFinra, make_client: Any, sleeps: SleepRecorder, status: int
) -> None:
    finra.reply_always(Reply(status=status, body={"message": "no such thing"}))

    with pytest.raises(FinraHTTPError) as caught:
        summary(make_client(max_retries=3))

    assert caught.value.status == status
    assert "no such thing" in caught.value.body_excerpt
    assert f"HTTP {status}" in str(caught.value)
    assert finra.request_count == 1
    assert sleeps.waits == []


def test_retries_run_out_on_persistent_5xx(finra: FakeFinra, make_client: Any) -> None:
    finra.reply_always(Reply(status=503, body=b"down for maintenance"))
    with pytest.raises(FinraHTTPError, match="503.*down for maintenance"):
        summary(make_client(max_retries=2))
    assert finra.request_count == 3


def test_connection_errors_are_retried_through_a_custom_transport(
    sleeps: SleepRecorder,
) -> None:
    attempts: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        attempts.append(request)
        if len(attempts) < 3:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(
            200, headers={"Record-Total": "1"}, json=[{"weekStartDate": "2025-12-01"}]
        )

    config = FinraClientConfig(base_url="https://finra.invalid", requests_per_second=1000.0)
    with FinraClient(
        config,
        transport=httpx.MockTransport(handle),
        breaker=build_breaker(fail_max=5, reset_timeout=60),
        sleep=sleeps,
    ) as client:
        assert client.list_weeks(tier="T1", summary_type="ATS_W_SMBL") == [WEEK]
    assert len(attempts) == 3
    assert len(sleeps.waits) == 2
    assert (
        str(attempts[0].url)
        == "https://finra.invalid/data/group/otcMarket/name/weeklyDownloadDetails"
    )


def test_hung_response_times_out_is_retried_then_surfaces(
    finra: FakeFinra, make_client: Any
) -> None:
    finra.reply_always(Reply(delay=10, body=[]))
    client = make_client(read_timeout=0.2, max_retries=2)

    started = time.monotonic()
    with pytest.raises(FinraTransportError, match="after 3 attempt") as caught:
        summary(client)

    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)
    assert finra.request_count == 3
    assert time.monotonic() - started < 10, "each attempt timed out, none waited for the reply"


# -- protocol errors ------------------------------------------------------------------------

PAGING_HEADERS = [("record-total", "1"), ("record-offset", "0"), ("record-limit", "5000")]


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (Reply(headers=PAGING_HEADERS, body=b"<html>oops</html>"), "not valid JSON"),
        (Reply(headers=PAGING_HEADERS, body={"rows": []}), "JSON dict, expected an array"),
        (Reply(headers=PAGING_HEADERS, body=[{"a": 1}, 2]), "item 1 is a JSON int"),
        (
            Reply(headers=[*PAGING_HEADERS, ("Content-Encoding", "gzip")], body=b"not gzip"),
            "could not be decoded",
        ),
    ],
    ids=["not-json", "object", "non-object-item", "bad-gzip"],
)
def test_malformed_body_is_a_protocol_error(
    finra: FakeFinra, make_client: Any, reply: Reply, message: str
) -> None:
    finra.reply_always(reply)
    with pytest.raises(FinraProtocolError, match=message):
        summary(make_client())
    assert finra.request_count == 1, "a malformed answer is not retried"


def _on_page(offset: int, change: Any) -> Any:
    def hook(at: int, rows: list[dict[str, Any]], headers: Headers) -> Any:
        return change(rows, headers) if at == offset else (rows, headers)

    return hook


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (
            _on_page(5, lambda rows, h: (rows[:-1], h)),
            r"page 2 \(offset 5\): 4 rows, expected 5",
        ),
        (
            _on_page(10, lambda rows, h: ([*rows, rows[0]], h)),
            r"page 3 \(offset 10\): 3 rows take the count to 13, past Record-Total 12",
        ),
        (
            _on_page(0, lambda rows, h: (rows, set_header(h, "record-total", None))),
            r"missing Record-Total header .* page 1 \(offset 0\)",
        ),
        (
            _on_page(0, lambda rows, h: (rows, set_header(h, "record-total", "12 rows"))),
            r"Record-Total header '12 rows' is not an integer",
        ),
        (
            _on_page(5, lambda rows, h: (rows, set_header(h, "record-offset", "0"))),
            r"page 2 \(offset 5\): Record-Offset is 0, requested offset 5",
        ),
        (
            _on_page(5, lambda rows, h: (rows, set_header(h, "record-total", "13"))),
            r"page 2 \(offset 5\): Record-Total changed from 12 to 13",
        ),
        (
            _on_page(0, lambda rows, h: (rows, set_header(h, "record-limit", "4"))),
            r"page 1 \(offset 0\): 5 rows, more than the page limit of 4",
        ),
        (
            _on_page(5, lambda rows, h: ([], h)),
            r"page 2 \(offset 5\): 0 rows, expected 5",
        ),
    ],
    ids=[
        "short-middle-page",
        "more-than-total",
        "no-record-total",
        "bad-record-total",
        "wrong-offset",
        "total-changed",
        "over-record-limit",
        "empty-middle-page",
    ],
)
def test_paging_contract_violations_are_protocol_errors(
    finra: FakeFinra, make_client: Any, hook: Any, message: str
) -> None:
    rows = serve_week(finra, 12)
    finra.page_hook = hook
    received: list[dict[str, Any]] = []

    with pytest.raises(FinraProtocolError, match=message):
        for page in make_client(page_size=5).iter_weekly_summary(
            week=WEEK, tier="T1", summary_type="ATS_W_SMBL_FIRM"
        ):
            received.extend(page)

    assert received == rows[: len(received)], "pages before the bad one were good"


def test_middle_page_without_content_is_a_protocol_error(
    finra: FakeFinra, make_client: Any
) -> None:
    serve_week(finra, 12)
    finra.page_hook = _on_page(5, lambda rows, h: (rows, h))
    client = make_client(page_size=5)
    pages = client.iter_weekly_summary(week=WEEK, tier="T1", summary_type="ATS_W_SMBL_FIRM")
    next(pages)
    finra.reply_next(Reply(status=204))
    with pytest.raises(FinraProtocolError, match="no content, but Record-Total promised 12"):
        next(pages)


# -- circuit breaker ------------------------------------------------------------------------


def test_breaker_opens_fails_fast_then_half_opens_and_recovers(
    finra: FakeFinra, make_client: Any
) -> None:
    rows = serve_week(finra, 2)
    breaker = build_breaker(fail_max=3, reset_timeout=0.3)
    client = make_client(breaker=breaker, max_retries=0)
    finra.reply_always(Reply(status=503))

    for _ in range(3):
        with pytest.raises(FinraHTTPError):  # the tripping call raises its own error
            summary(client)
    assert finra.request_count == 3
    status = breaker_status(breaker)
    assert status.state == "open"
    assert status.as_dict()["state"] == "open"
    assert status.as_dict()["failures"] == 3
    assert gauge_value() == 2

    with pytest.raises(FinraUnavailable) as caught:
        summary(client)
    assert finra.request_count == 3, "an open circuit does not reach FINRA"
    match = re.fullmatch(r"FINRA API unavailable, circuit open until (\S+)", str(caught.value))
    assert match
    assert abs(datetime.fromisoformat(match.group(1)) - caught.value.open_until) < timedelta(
        milliseconds=1
    )
    assert status.open_until is not None
    assert status.open_until - datetime.now(UTC) <= timedelta(seconds=0.3)

    time.sleep(0.35)
    assert breaker_status(breaker).state == "half-open"
    finra.reply_always(None)
    assert summary(client) == [rows]  # the trial call succeeds
    assert finra.request_count == 4
    assert breaker_status(breaker) == breaker_module.BreakerStatus("closed", None, 0)
    assert gauge_value() == 0


def test_failed_trial_call_reopens_the_circuit(finra: FakeFinra, make_client: Any) -> None:
    breaker = build_breaker(fail_max=1, reset_timeout=0.2)
    client = make_client(breaker=breaker, max_retries=0)
    finra.reply_always(Reply(status=500))
    with pytest.raises(FinraHTTPError):
        summary(client)
    time.sleep(0.25)
    with pytest.raises(FinraHTTPError):
        summary(client)  # the trial reaches FINRA and fails
    assert breaker_status(breaker).state == "open"
    with pytest.raises(FinraUnavailable):
        summary(client)
    assert finra.request_count == 2


def test_breaker_counts_one_failure_per_logical_request(finra: FakeFinra, make_client: Any) -> None:
    breaker = build_breaker(fail_max=2, reset_timeout=60)
    client = make_client(breaker=breaker, max_retries=2)
    finra.reply_always(Reply(status=503))

    with pytest.raises(FinraHTTPError):
        summary(client)
    assert finra.request_count == 3, "three attempts..."
    assert breaker.fail_counter == 1, "...are one failure"
    assert breaker_status(breaker).state == "closed"

    with pytest.raises(FinraHTTPError):
        summary(client)
    assert breaker_status(breaker).state == "open"
    with pytest.raises(FinraUnavailable):
        summary(client)
    assert finra.request_count == 6


def test_caller_errors_do_not_trip_the_breaker(finra: FakeFinra, make_client: Any) -> None:
    breaker = build_breaker(fail_max=1, reset_timeout=60)
    client = make_client(breaker=breaker)
    finra.reply_always(Reply(status=400, body={"message": "bad filter"}))
    for _ in range(2):
        with pytest.raises(FinraHTTPError):
            summary(client)
    assert breaker_status(breaker).state == "closed"
    assert finra.request_count == 2


def test_breaker_state_is_shared_through_redis(finra: FakeFinra, make_client: Any) -> None:
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    try:
        conn.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {REDIS_TEST_URL} is needed for this test: {exc}")
    namespace = f"test-finra-{uuid.uuid4().hex}"
    try:
        first, second = (
            build_breaker(
                fail_max=2, reset_timeout=60, redis_url=REDIS_TEST_URL, namespace=namespace
            )
            for _ in range(2)
        )
        assert isinstance(first._state_storage, pybreaker.CircuitRedisStorage)
        one = make_client(breaker=first, max_retries=0)
        other = make_client(breaker=second, max_retries=0)
        finra.reply_always(Reply(status=503))

        with pytest.raises(FinraHTTPError):
            summary(one)
        assert second.fail_counter == 1, "failures are counted in Redis"
        with pytest.raises(FinraHTTPError):
            summary(one)

        status = breaker_status(second)
        assert status.state == "open"
        assert status.open_until == breaker_status(first).open_until
        with pytest.raises(FinraUnavailable):
            summary(other)
        assert finra.request_count == 2
    finally:
        keys = list(conn.scan_iter(match=f"{namespace}:*"))
        if keys:
            conn.delete(*keys)
        conn.close()


def test_unreachable_redis_falls_back_to_a_process_breaker() -> None:
    breaker = build_breaker(fail_max=1, reset_timeout=1, redis_url="redis://127.0.0.1:1/9")
    assert isinstance(breaker._state_storage, pybreaker.CircuitMemoryStorage)
    assert breaker_status(breaker).state == "closed"


def test_circuit_gauge_survives_reimport() -> None:
    gauge = breaker_module.CIRCUIT_STATE_GAUGE
    reloaded = importlib.reload(breaker_module)
    assert reloaded.CIRCUIT_STATE_GAUGE is gauge
    assert REGISTRY.get_sample_value(GAUGE) is not None


# -- rate limiting --------------------------------------------------------------------------


def test_rate_limiter_holds_ten_per_second_under_concurrency(
    finra: FakeFinra, make_client: Any
) -> None:
    finra.serve("weeklyDownloadDetails", week_rows(WEEK, 1))
    granted: list[float] = []
    grants = threading.Lock()

    class RecordingLimiter(RateLimiter):
        def acquire(self) -> None:
            super().acquire()
            with grants:
                granted.append(time.monotonic())

    limiter = RecordingLimiter(10)
    try:
        client = make_client(requests_per_second=10, rate_limiter=limiter)
        with ThreadPoolExecutor(max_workers=5) as pool:
            results = list(
                pool.map(
                    lambda _: client.list_weeks(tier="T1", summary_type="ATS_W_SMBL"), range(25)
                )
            )
    finally:
        limiter.close()

    assert results == [[WEEK]] * 25
    assert len(finra.requests) == 25
    # Measured where the client lets a request go: the server's arrival times add the
    # machine's scheduling jitter, which can bunch requests sent a window apart.
    sent = sorted(granted)
    assert len(sent) == 25
    busiest = max(sum(1 for t in sent if start <= t < start + 1.0) for start in sent)
    assert busiest <= 10, f"{busiest} requests were sent to FINRA within one second"
    assert sent[-1] - sent[0] < 3.5, "the limiter should not throttle far below the rate"


def test_fractional_rates_become_whole_requests_per_window() -> None:
    limiter = RateLimiter(2.5)
    try:
        assert (limiter.rate.limit, limiter.rate.interval) == (2, 800)
    finally:
        limiter.close()
    assert process_rate_limiter(7.0) is process_rate_limiter(7.0)


def test_clients_share_the_process_breaker_and_limiter(finra: FakeFinra) -> None:
    config = FinraClientConfig(base_url=finra.base_url, requests_per_second=1000.0)
    with FinraClient(config) as one, FinraClient(config) as other:
        assert one.breaker is other.breaker
        assert one.breaker.name == "finra"
        assert one.rate_limiter is other.rate_limiter
        assert one.list_weeks(tier="T1", summary_type="ATS_W_SMBL") == []


# -- list_weeks -----------------------------------------------------------------------------


def test_list_weeks_pages_through_the_recorded_answer(finra: FakeFinra, make_client: Any) -> None:
    recording = load_sample("weeklyDownloadDetails_response")
    recorded_request = load_sample("weeklyDownloadDetails_request")["body"]
    total = int(recording["headers"]["record-total"])
    newest = date.fromisoformat(recording["body"][0]["weekStartDate"])
    # The recording is the first page of 262 weeks; the fake serves the older ones.
    finra.serve("weeklyDownloadDetails", week_rows(newest, total))
    finra.reply_next(Reply.from_recording("weeklyDownloadDetails_response"))

    weeks = make_client(page_size=52).list_weeks(tier="T1", summary_type="ATS_W_SMBL")

    assert len(weeks) == total
    assert weeks[:52] == [date.fromisoformat(r["weekStartDate"]) for r in recording["body"]]
    assert weeks == sorted(weeks, reverse=True)
    assert weeks[-1] == newest - timedelta(weeks=total - 1)
    assert [r.body["offset"] for r in finra.requests] == [0, 52, 104, 156, 208, 260]
    sent = finra.requests[0].body
    for key in ("fields", "sortFields", "compareFilters"):
        assert sent[key] == recorded_request[key]
    assert finra.requests[0].dataset == "weeklyDownloadDetails"


def test_list_weeks_rejects_a_bad_date(finra: FakeFinra, make_client: Any) -> None:
    finra.reply_next(Reply(headers=[("Record-Total", "1")], body=[{"weekStartDate": "16/10"}]))
    with pytest.raises(FinraProtocolError, match="row 1: weekStartDate '16/10'"):
        make_client().list_weeks(tier="T2", summary_type="OTC_W_SMBL")


# -- rows -> download-format lines ----------------------------------------------------------


def test_api_rows_render_the_real_download_file_byte_for_byte(real_otc_file: Any) -> None:
    expected = real_otc_file.read_bytes()
    lines = expected.decode().splitlines()
    assert lines[0].split("|") == list(DOWNLOAD_COLUMNS)
    rows = []
    for line in lines[1:]:
        row: dict[str, Any] = dict(zip(DOWNLOAD_COLUMNS, line.split("|"), strict=True))
        for numeric in ("totalWeeklyShareQuantity", "totalWeeklyTradeCount"):
            row[numeric] = int(row[numeric])  # as the API sends them
        row["weekStartDate"] = "2025-11-24"  # API extras are ignored
        rows.append(row)
    pages = (rows[i : i + 5000] for i in range(0, len(rows), 5000))

    assert b"".join(api_rows_to_lines(pages)) == expected


def test_api_rows_from_the_client_become_lines(finra: FakeFinra, make_client: Any) -> None:
    serve_week(finra, 3)
    lines = list(
        api_rows_to_lines(
            make_client().iter_weekly_summary(week=WEEK, tier="T1", summary_type="ATS_W_SMBL_FIRM")
        )
    )
    assert lines[0] == HEADER_LINE
    assert lines[1] == (
        b"NMS Tier 1|AAAA|Aaaa Holdings Inc. Common Stock|EBXL LEVEL ATS|EBXL|1000|1|2025-12-22\n"
    )
    assert len(lines) == 4
    assert list(api_rows_to_lines([])) == [HEADER_LINE]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"MPID": None}, "API row 4: required field 'MPID' is missing"),
        ({"issueName": "A|B Corp"}, "API row 4: field 'issueName' contains a delimiter"),
        ({"totalWeeklyTradeCount": 1.5}, "API row 4: field 'totalWeeklyTradeCount' is 1.5"),
    ],
)
def test_api_rows_that_do_not_fit_the_file_format(change: dict[str, Any], message: str) -> None:
    rows = weekly_rows(5, week=WEEK)
    bad = {**rows[3], **change}
    bad = {k: v for k, v in bad.items() if v is not None}
    pages = [rows[:2], [rows[2], bad, rows[4]]]
    with pytest.raises(FinraProtocolError, match=re.escape(message)):
        list(api_rows_to_lines(pages))


# -- small pieces ---------------------------------------------------------------------------


def test_parse_retry_after() -> None:
    now = datetime(2026, 4, 7, 0, 58, 30, tzinfo=UTC)
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("Tue, 07 Apr 2026 00:58:40 GMT", now=now) == 10.0
    assert parse_retry_after("Tue, 07 Apr 2026 00:58:00 GMT", now=now) == 0.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None
    assert parse_retry_after("-3") == 0.0


def test_config_defaults_and_environment() -> None:
    assert FinraClientConfig.from_env({}) == FinraClientConfig()
    config = FinraClientConfig.from_env(
        {
            "FINRA_API_BASE_URL": "http://127.0.0.1:9/",
            "FINRA_API_TIMEOUT": "2.5",
            "FINRA_API_PAGE_SIZE": "1000",
            "FINRA_API_MAX_RETRIES": "0",
            "FINRA_API_RPS": "4",
            "FINRA_BREAKER_FAIL_MAX": "2",
            "FINRA_BREAKER_RESET_SECONDS": "30",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "FINRA_API_UNRELATED": "ignored",
        }
    )
    assert config == FinraClientConfig(
        base_url="http://127.0.0.1:9",
        connect_timeout=2.5,
        read_timeout=2.5,
        page_size=1000,
        max_retries=0,
        requests_per_second=4.0,
        breaker_fail_max=2,
        breaker_reset_timeout=30.0,
        redis_url="redis://127.0.0.1:6379/0",
    )
    assert FinraClientConfig.from_env({"FINRA_API_TIMEOUT": "60"}).connect_timeout == 5.0
    assert FinraClientConfig.from_env({"FINRA_API_PAGE_SIZE": " "}).page_size == 5000


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("FINRA_API_PAGE_SIZE", "0"),
        ("FINRA_API_PAGE_SIZE", "5001"),
        ("FINRA_API_PAGE_SIZE", "lots"),
        ("FINRA_API_TIMEOUT", "-1"),
        ("FINRA_API_TIMEOUT", "inf"),
        ("FINRA_API_MAX_RETRIES", "-1"),
        ("FINRA_API_RPS", "0"),
        ("FINRA_BREAKER_FAIL_MAX", "0"),
        ("FINRA_BREAKER_RESET_SECONDS", "nan"),
        ("FINRA_API_BASE_URL", "api.finra.org"),
        ("REDIS_URL", "http://127.0.0.1:6379"),
    ],
)
def test_config_errors_name_the_variable(variable: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"^{variable}="):
        FinraClientConfig.from_env({variable: value})


def test_config_errors_name_the_field() -> None:
    with pytest.raises(ValueError, match="page_size"):
        FinraClientConfig(page_size=0)
    with pytest.raises(ValueError, match="backoff_max"):
        FinraClientConfig(backoff_base=5, backoff_max=1)


def test_samples_are_where_the_fake_expects_them() -> None:
    assert fake.PATH_PREFIX in load_sample("weeklySummary_request")["uri"]
