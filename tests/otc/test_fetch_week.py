"""``otc.fetch_week`` end to end against the local fake FINRA (``finra_server``).

The pipeline runs through the Dispatcher on the local backend, as a command would run
it; FINRA's client is pointed at the fake with a fresh breaker per test.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pybreaker
import pytest
from django.db import transaction

from executions.models import ExecutionStatus
from executions.registry import InvalidParams, registry
from otc import selectors as otc_selectors
from otc.finra import FinraClientConfig
from otc.models import Capture, QualityReport, Reject, VenueVolume
from otc.parser import HEADER
from otc.services.reconcile import METRICS_KEY, WARNING_PREFIX
from tests.otc import finra_server as fake
from tests.otc.etl_support import HEADER_LINE, analytics_snapshot, run_etl, stored_counts
from tests.otc.fetch_support import (
    PAGE_SIZE,
    ROWS,
    WEEK,
    Row,
    events,
    fetch,
    publish,
    symbol_totals,
    venue_rows,
)

pytestmark = [pytest.mark.embedded, pytest.mark.django_db(transaction=True)]


def file_bytes(rows: list[Row]) -> bytes:
    """The same data as FINRA's download file, written independently of the API path
    and in reverse order, so only content (not bytes) can make the results agree."""
    lines = [HEADER_LINE] + ["|".join(str(r[c]) for c in HEADER) for r in reversed(rows)]
    return ("\n".join(lines) + "\n").encode()


def comparable(snapshot: dict[str, Any]) -> dict[str, Any]:
    """A snapshot without what must differ between a file and an API capture."""
    snapshot["capture"].pop("checksum")
    if snapshot["quality"] is not None:
        snapshot["quality"]["metrics"].pop(METRICS_KEY, None)
    return snapshot


class _Rollback(Exception):
    pass


def file_snapshot(tmp_path: Path, rows: list[Row]) -> dict[str, Any]:
    """Analytics of the same week ingested from a file, then rolled back."""
    path = tmp_path / "finra-t1-ats.psv"
    path.write_bytes(file_bytes(rows))
    try:
        with transaction.atomic():
            result = run_etl(path, tier="T1", week=WEEK, ats=True)
            snapshot = analytics_snapshot(result["capture_id"])
            raise _Rollback
    except _Rollback:
        pass
    assert stored_counts()["Capture"] == 0
    return comparable(snapshot)


# -- a week over the API is the same week as from the file ---------------------------


def test_multi_page_week_matches_the_file_ingest(
    finra: fake.FakeFinra, finra_config: FinraClientConfig, tmp_path: Path
) -> None:
    rows = venue_rows()
    publish(finra, rows)
    expected = file_snapshot(tmp_path, rows)

    execution = fetch(week="2025-12-04", ats=True)  # a Thursday: the week is its Monday

    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    capture = Capture.objects.get()
    assert comparable(analytics_snapshot(capture.pk)) == expected
    assert (capture.tier, capture.week, capture.ats) == ("T1", WEEK, True)
    assert capture.source.endswith(
        "/data/group/otcMarket/name/weeklySummary summaryTypeCode=ATS_W_SMBL_FIRM "
        "tierIdentifier=T1 weekStartDate=2025-12-01"
    )
    assert capture.execution_id == execution.pk
    assert [line.line_no for line in otc_selectors.raw_rows(capture.pk)] == list(range(2, ROWS + 2))
    progress = events(execution, "fetch_progress")
    assert [(p["pages"], p["rows"]) for p in progress] == [
        (page, min(page * PAGE_SIZE, ROWS)) for page in range(1, 8)
    ]
    assert all(p["rows_per_second"] >= 0 and "elapsed_seconds" in p for p in progress)
    summary_requests = [r.body for r in finra.requests if r.dataset == "weeklySummary"]
    assert [r["offset"] for r in summary_requests[:7]] == list(range(0, ROWS, PAGE_SIZE))
    assert {r["limit"] for r in summary_requests} == {PAGE_SIZE}
    result = execution.result
    assert result["status"] == "created" and result["steps"]["fetch"]["rows"] == ROWS
    assert result["fetch"]["pages"] == 7 and result["fetch"]["rows"] == ROWS
    assert result["grade"] == "A"
    assert [e["step"] for e in events(execution, "step_finished")] == [
        "fetch",
        "normalize",
        "compute",
        "reconcile",
    ]
    assert result["reconciliation"]["differing"] == 0
    assert result["reconciliation"]["symbols"] == 9


def test_week_and_tier_params_are_canonical() -> None:
    spec = registry.get("otc.fetch_week")
    assert spec.validate({"tier": "otce", "week": "2025-12-07"}) == {
        "tier": "OTC",
        "week": "2025-12-01",
        "ats": False,
    }
    assert spec.lock_key_for(spec.validate({"tier": "T2", "week": "2025-12-03", "ats": False}))
    with pytest.raises(InvalidParams, match="tier: unknown tier 'T3'"):
        spec.validate({"tier": "T3", "week": "2025-12-01"})
    with pytest.raises(InvalidParams, match="week: "):
        spec.validate({"tier": "T1", "week": "December"})
    with pytest.raises(InvalidParams, match="page_size: unknown parameter"):
        spec.validate({"tier": "T1", "week": "2025-12-01", "page_size": 5})


def test_non_ats_fetch_asks_for_otc_summaries(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    rows = fake.weekly_rows(14, week=WEEK, tier="T2", summary_type="OTC_W_SMBL_FIRM")
    publish(finra, rows, symbol_totals(rows, summary_type="OTC_W_SMBL"))

    execution = fetch(tier="T2", ats=False)

    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    assert Capture.objects.get().ats is False
    filters = [
        {f["fieldName"]: f["fieldValue"] for f in r.body["compareFilters"]} for r in finra.requests
    ]
    assert [f["summaryTypeCode"] for f in filters] == [
        "OTC_W_SMBL_FIRM",
        "OTC_W_SMBL_FIRM",
        "OTC_W_SMBL",
    ]
    assert execution.result["reconciliation"]["summary_type"] == "OTC_W_SMBL"


# -- idempotency and supersession ------------------------------------------------------------


def test_unchanged_refetch_is_a_no_op(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    publish(finra, venue_rows())
    first = fetch()
    before = stored_counts() | {"QualityReport": QualityReport.objects.count()}

    again = fetch()

    assert again.status == ExecutionStatus.SUCCEEDED, again.error
    assert again.result["status"] == "unchanged"
    assert again.result["capture_id"] == first.result["capture_id"]
    assert list(again.result["steps"]) == ["fetch"] and again.result["reconciliation"] is None
    assert stored_counts() | {"QualityReport": QualityReport.objects.count()} == before
    assert [e["step"] for e in events(again, "step_finished")] == ["fetch"]


def test_changed_week_becomes_a_new_capture_superseding_the_old(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    rows = venue_rows()
    publish(finra, rows)
    first = fetch()
    rows[0] = {**rows[0], "totalWeeklyShareQuantity": rows[0]["totalWeeklyShareQuantity"] + 1}
    publish(finra, rows)

    second = fetch()

    assert second.status == ExecutionStatus.SUCCEEDED, second.error
    assert second.result["status"] == "created"
    assert second.result["steps"]["fetch"]["current_capture_id"] == first.result["capture_id"]
    assert second.result["steps"]["compute"]["superseded_capture_id"] == first.result["capture_id"]
    old = Capture.objects.get(pk=first.result["capture_id"])
    assert old.superseded_by_id == second.result["capture_id"]
    volume = VenueVolume.objects.get(
        capture_id=second.result["capture_id"],
        symbol=rows[0]["issueSymbolIdentifier"],
        mpid=rows[0]["MPID"],
    )
    assert volume.share_volume == rows[0]["totalWeeklyShareQuantity"]
    assert VenueVolume.objects.filter(capture=old).count() == ROWS  # the old one stays


# -- failures leave nothing behind -------------------------------------------------------------


def _drop_mpid_on_page_3(offset: int, page: list[Row], headers: fake.Headers) -> Any:
    if offset == 2 * PAGE_SIZE:
        page[4] = {k: v for k, v in page[4].items() if k != "MPID"}
    return page, headers


def _short_page_3(offset: int, page: list[Row], headers: fake.Headers) -> Any:
    return (page[:-1] if offset == 2 * PAGE_SIZE else page), headers


def _other_week_on_page_2(offset: int, page: list[Row], headers: fake.Headers) -> Any:
    if offset == PAGE_SIZE:
        page[0] = {**page[0], "weekStartDate": "2025-11-24"}
    return page, headers


@pytest.mark.parametrize(
    ("hook", "message"),
    [
        (_drop_mpid_on_page_3, "FinraProtocolError: API row 25: required field 'MPID' is missing"),
        (_short_page_3, "page 3 (offset 20): 9 rows, expected 10"),
        (
            _other_week_on_page_2,
            "API row 11: weekStartDate is '2025-11-24', but week 2025-12-01 was requested",
        ),
    ],
    ids=["missing-field", "short-page", "other-week"],
)
def test_malformed_page_fails_with_a_clear_message_and_no_capture(
    finra: fake.FakeFinra, finra_config: FinraClientConfig, hook: fake.PageHook, message: str
) -> None:
    publish(finra, venue_rows())
    finra.page_hook = hook

    execution = fetch()

    assert execution.status == ExecutionStatus.FAILED
    assert message in execution.error
    assert stored_counts() == dict.fromkeys(stored_counts(), 0)
    assert not Reject.objects.exists()


def test_malformed_body_fails_naming_the_page(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    publish(finra, venue_rows())
    finra.reply_next(
        fake.Reply(headers=[("Record-Total", str(ROWS))], body=b'{"not": "a list"}'),
    )

    execution = fetch()

    assert execution.status == ExecutionStatus.FAILED
    assert "FinraProtocolError" in execution.error and "page 1 (offset 0)" in execution.error
    assert not Capture.objects.exists()


def test_open_circuit_fails_fast(
    finra: fake.FakeFinra,
    finra_config: FinraClientConfig,
    breaker: pybreaker.CircuitBreaker,
) -> None:
    publish(finra, venue_rows())
    breaker.open()

    execution = fetch()

    assert execution.status == ExecutionStatus.FAILED
    assert "FinraUnavailable: FINRA API unavailable, circuit open until" in execution.error
    assert finra.request_count == 0
    assert not Capture.objects.exists()


def test_unpublished_week_fails_clearly(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    publish(finra, venue_rows())

    execution = fetch(week=WEEK + timedelta(weeks=1))

    assert execution.status == ExecutionStatus.FAILED
    assert (
        "WeekNotPublished: FINRA has no ATS_W_SMBL_FIRM rows for tier T1 week 2025-12-08"
        in execution.error
    )
    assert not Capture.objects.exists()


# -- reconciliation --------------------------------------------------------------------------


def test_symbol_totals_that_differ_become_a_quality_warning(
    finra: fake.FakeFinra, finra_config: FinraClientConfig
) -> None:
    rows = venue_rows()
    totals = {t["issueSymbolIdentifier"]: t for t in symbol_totals(rows)}
    totals["AAAB"]["totalWeeklyShareQuantity"] += 500  # de minimis: FINRA's total is higher
    totals["AAAC"]["totalWeeklyShareQuantity"] -= 20  # venue rows above FINRA's total
    totals["AAAC"]["totalWeeklyTradeCount"] -= 1
    del totals["AAAD"]  # a symbol FINRA's totals do not list
    publish(finra, rows, list(totals.values()))

    execution = fetch()

    assert execution.status == ExecutionStatus.SUCCEEDED, execution.error
    report = QualityReport.objects.get(replaced_at__isnull=True)
    assert report.grade == execution.result["grade"]  # not downgraded
    reconciliation = report.metrics[METRICS_KEY]
    assert reconciliation["symbols"] == 9
    assert reconciliation["matched"] == 6
    assert (reconciliation["unattributed_symbols"], reconciliation["over_symbols"]) == (1, 2)
    assert reconciliation["unattributed_volume"] == 500
    by_symbol = {d["symbol"]: d for d in reconciliation["differences"]}
    assert by_symbol["AAAB"]["volume_difference"] == 500
    assert by_symbol["AAAB"]["kind"] == "unattributed"
    assert (by_symbol["AAAC"]["volume_difference"], by_symbol["AAAC"]["trade_difference"]) == (
        -20,
        -1,
    )
    assert by_symbol["AAAD"]["finra_volume"] is None
    (warning,) = [w for w in report.warnings if w.startswith(WARNING_PREFIX)]
    assert "3 of 9 symbols differ" in warning
    assert "500 shares, e.g. de minimis firms" in warning
    assert "AAAB +500 shares/+0 trades" in warning and "AAAC -20 shares/-1 trades" in warning
    # the report before reconciliation is kept as a replaced version
    assert QualityReport.objects.filter(replaced_at__isnull=False).count() == 1
    assert execution.result["reconciliation"]["warning"] == warning
