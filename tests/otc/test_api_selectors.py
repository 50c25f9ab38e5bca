"""The selectors added for the API: latest week, weeks held with their grade as known at
a time, a symbol's venue shares, venue shares with their rolling window."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from otc import selectors
from otc.models import Capture, QualityReport
from spine.time import utc_now
from tests.otc.etl_support import row, run_etl, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

W1 = date(2025, 11, 3)
W2 = W1 + timedelta(weeks=1)


def load_week(tmp_path: Path, week: date, lines: list[str], name: str, tier: str = "T2") -> int:
    return run_etl(write_file(tmp_path, lines, name), tier=tier, week=week)["capture_id"]


def week_lines(a: int, b: int) -> list[str]:
    return [
        row("AAA", "XA", a, 10, tier="T2"),
        row("AAA", "XB", b, 5, tier="T2"),
        row("BBB", "XA", 7, 1, tier="T2"),
    ]


def test_latest_week_per_tier_and_symbol(tmp_path: Path) -> None:
    assert selectors.latest_week() is None
    load_week(tmp_path, W1, week_lines(600, 400), "w1.psv")
    before = utc_now()
    load_week(tmp_path, W2, [row("BBB", "XA", 9, 1, tier="T2")], "w2.psv")
    assert selectors.latest_week(tier="T2") == W2
    assert selectors.latest_week(tier="T1") is None
    assert selectors.latest_week(symbol="aaa") == W1
    assert selectors.latest_week(symbol="BBB") == W2
    assert selectors.latest_week(as_of=before) == W1


def test_weeks_held_grade_is_the_one_known_then(tmp_path: Path) -> None:
    capture_id = load_week(tmp_path, W1, week_lines(600, 400), "w1.psv")
    (held,) = selectors.weeks_held(tier="T2")
    assert held.pk == capture_id and held.grade == Capture.objects.get(pk=capture_id).quality_grade
    before = utc_now()
    # A later recomputation replaced the report with another grade.
    QualityReport.objects.filter(capture_id=capture_id).update(replaced_at=utc_now())
    report = QualityReport.objects.get(capture_id=capture_id)
    report.pk, report.grade, report.computed_at, report.replaced_at = None, "D", utc_now(), None
    report.save()
    assert selectors.weeks_held(tier="T2").get().grade == "D"
    assert selectors.weeks_held(tier="T2", as_of=before).get().grade == held.grade
    assert list(selectors.weeks_held(tier="T2", ats=True)) == []


def test_week_symbol_summaries_are_the_weeks_rows(tmp_path: Path) -> None:
    load_week(tmp_path, W1, week_lines(600, 400), "w1.psv")
    before = utc_now()
    load_week(tmp_path, W1, week_lines(500, 500), "w1-corrected.psv")
    load_week(tmp_path, W1, [row("CCC", "XA", 5, 1, tier="T1")], "t1.psv", tier="T1")

    def ids(qs: object) -> list[int]:
        return sorted(qs.values_list("pk", flat=True))  # type: ignore[attr-defined]

    for params in (
        {"tier": "T2", "ats": False},
        {"tier": "T2", "ats": False, "as_of": before},
        {"tier": None, "ats": None},
        {"tier": "T1", "ats": True},
    ):
        same = selectors.symbol_summaries(week=W1, **params)
        assert ids(selectors.week_symbol_summaries(week=W1, **params)) == ids(same), params
    now = selectors.week_symbol_summaries(week=W1, tier="T2", ats=False).get(symbol="AAA")
    then = selectors.week_symbol_summaries(week=W1, tier="T2", ats=False, as_of=before)
    assert now.hhi == Decimal("5000.0000") and then.get(symbol="AAA").hhi == Decimal("5200.0000")
    assert selectors.week_symbol_summaries(week=W2, tier="T2", ats=False).count() == 0


def test_symbol_venues_shares(tmp_path: Path) -> None:
    load_week(tmp_path, W1, week_lines(2, 1), "w1.psv")
    rows = selectors.symbol_venues(symbol="aaa", week=W1 + timedelta(days=4))
    assert [(r["mpid"], r["share_volume"], r["share"]) for r in rows] == [
        ("XA", 2, Decimal("66.6667")),
        ("XB", 1, Decimal("33.3333")),
    ]
    assert sum(r["share"] for r in rows) == 100
    assert selectors.symbol_venues(symbol="AAA", week=W2) == []


def test_venue_shares_with_rolling(tmp_path: Path) -> None:
    load_week(tmp_path, W1, week_lines(600, 400), "w1.psv")
    load_week(tmp_path, W2, week_lines(900, 400), "w2.psv")
    rows = {r.mpid: r for r in selectors.venue_shares_with_rolling(tier="T2", week=W2)}
    assert rows["XA"].trend == "up" and rows["XA"].weeks_in_window == 2
    assert rows["XA"].rolling_avg_volume == Decimal("757.0000")  # (607 + 907) / 2
    assert rows["XB"].trend == "stable"
    first = {r.mpid: r for r in selectors.venue_shares_with_rolling(tier="T2", week=W1)}
    assert first["XA"].trend is None and first["XA"].weeks_in_window == 1
    before = utc_now()
    load_week(tmp_path, W2, week_lines(100, 400), "w2-corrected.psv")
    (now,) = selectors.venue_shares_with_rolling(tier="T2", week=W2, mpid="xa")
    (then,) = selectors.venue_shares_with_rolling(tier="T2", week=W2, mpid="XA", as_of=before)
    assert (now.trend, now.total_volume) == ("down", 107)
    assert (then.trend, then.total_volume, then.rolling_avg_volume) == ("up", 907, Decimal("757"))
