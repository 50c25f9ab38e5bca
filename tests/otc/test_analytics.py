"""Analytics on the real FINRA file and on small hand-made weeks; point in time reads."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest
from django.db.models import Sum

from otc import selectors
from otc.models import (
    Capture,
    SymbolRolling,
    SymbolWeekSummary,
    Venue,
    VenueMarketShare,
    VenueVolume,
)
from otc.services import compute_capture
from otc.services.rolling import window_captures
from spine.time import utc_now
from tests.otc.etl_support import WEEK, row, run_etl, write_file

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]

Q4 = Decimal("0.0001")


def pct(part: int, whole: int) -> Decimal:
    return (Decimal(part) * 100 / whole).quantize(Q4, ROUND_HALF_UP)


def hand_summary(rows: list[tuple[str, int, int]]) -> dict[str, object]:
    """A symbol's summary computed straight from its (mpid, volume, trades) rows."""
    total = sum(v for _, v, _ in rows)
    trades = sum(t for _, _, t in rows)
    shares = {mpid: pct(v, total) for mpid, v, _ in rows}
    top = min(rows, key=lambda r: (-r[1], r[0]))[0]
    return {
        "total_volume": total,
        "total_trades": trades,
        "venue_count": len(rows),
        "avg_trade_size": (Decimal(total) / trades).quantize(Q4, ROUND_HALF_UP),
        "top_venue_mpid": top,
        "top_venue_share": shares[top],
        "hhi": sum(s * s for s in shares.values()).quantize(Q4, ROUND_HALF_UP),
    }


@pytest.fixture
def real_capture(real_otc_file: Path) -> Capture:
    return Capture.objects.get(pk=run_etl(real_otc_file, tier="OTC", ats=True)["capture_id"])


# --- the real FINRA file -----------------------------------------------------------------


def test_real_file_totals(real_capture: Capture) -> None:
    assert VenueVolume.objects.filter(capture=real_capture).count() == 5328
    assert SymbolWeekSummary.objects.filter(capture=real_capture).count() == 3111
    assert VenueMarketShare.objects.filter(capture=real_capture).count() == 9
    assert Venue.objects.count() == 9
    assert real_capture.reject_count == 0 and real_capture.ats is True
    total = 1_335_995_901
    assert VenueVolume.objects.aggregate(v=Sum("share_volume"))["v"] == total
    assert SymbolWeekSummary.objects.aggregate(v=Sum("total_volume"))["v"] == total
    assert VenueMarketShare.objects.aggregate(v=Sum("total_volume"))["v"] == total


def test_real_file_venue_shares_sum_to_100_and_rank_by_volume(real_capture: Capture) -> None:
    shares = list(selectors.venue_shares(tier="OTC", week=WEEK, ats=True).order_by("rank", "mpid"))
    assert abs(sum(s.market_share for s in shares) - 100) <= Decimal("0.01")
    volumes = [s.total_volume for s in shares]
    assert volumes == sorted(volumes, reverse=True)
    assert [s.rank for s in shares] == list(range(1, 10))
    otcn = next(s for s in shares if s.mpid == "OTCN")
    assert (otcn.total_volume, otcn.market_share, otcn.rank) == (
        1_098_033_568,
        pct(1_098_033_568, 1_335_995_901),
        1,
    )


def test_real_file_hhi_bounds_and_single_venue_symbols(real_capture: Capture) -> None:
    summaries = SymbolWeekSummary.objects.filter(capture=real_capture)
    assert all(0 <= s.hhi <= 10_000 for s in summaries if s.hhi is not None)
    single = summaries.filter(venue_count=1)
    assert single.exists()
    assert {s.hhi for s in single} == {Decimal("10000.0000")}
    assert {s.top_venue_share for s in single} == {Decimal("100.0000")}
    assert {s.concentration for s in single} == {"concentrated"}


def test_real_file_summaries_match_a_hand_computation(
    real_capture: Capture, real_otc_file: Path
) -> None:
    by_symbol: dict[str, list[tuple[str, int, int]]] = defaultdict(list)
    names: dict[str, str] = {}
    for line in real_otc_file.read_text().splitlines()[1:]:
        fields = line.split("|")
        by_symbol[fields[1]].append((fields[4], int(fields[5]), int(fields[6])))
        names[fields[4]] = fields[3]
    checked = 0
    for symbol in ("AABB", "AACAY", "ECOX", "OZSC", "VHAI"):
        expected = hand_summary(by_symbol[symbol])
        got = selectors.symbol_summaries(
            tier="OTCE", week="2025-12-17", ats=True, symbol=symbol
        ).get()
        assert {key: getattr(got, key) for key in expected} == expected, symbol
        assert got.top_venue_name == names[got.top_venue_mpid]
        checked += 1
    assert checked == 5


# --- small hand-made weeks ----------------------------------------------------------------


def test_concentration_levels_ties_and_zero_volume(tmp_path: Path) -> None:
    lines = [
        *(row("FOUR", m, 100, 10) for m in ("AAAA", "BBBB", "CCCC", "DDDD")),  # 4 x 25%
        *(row("TENV", f"V{i:03d}", 7, 1) for i in range(10)),  # 10 x 10%
        row("TIES", "ZZZZ", 50, 5),
        row("TIES", "MMMM", 50, 0),
        row("ZERO", "AAAA", 0, 0),
    ]
    run_etl(write_file(tmp_path, lines))
    got = {s.symbol: s for s in SymbolWeekSummary.objects.all()}
    assert (got["FOUR"].hhi, got["FOUR"].concentration) == (Decimal("2500"), "moderate")
    assert (got["TENV"].hhi, got["TENV"].concentration) == (Decimal("1000"), "competitive")
    assert (got["TIES"].top_venue_mpid, got["TIES"].top_venue_share) == ("MMMM", Decimal(50))
    assert got["TIES"].avg_trade_size == Decimal(20)
    zero = got["ZERO"]
    assert (zero.total_volume, zero.hhi, zero.top_venue_share, zero.avg_trade_size) == (
        0,
        None,
        None,
        None,
    )
    assert zero.concentration == ""
    ranks = dict(VenueMarketShare.objects.values_list("mpid", "rank"))
    # AAAA 100, BBBB..DDDD 100 each, ZZZZ 50, MMMM 50, V000.. 7 each
    assert ranks["AAAA"] == ranks["BBBB"] == 1
    assert ranks["MMMM"] == ranks["ZZZZ"] == 5
    assert ranks["V000"] == 7
    vv = VenueVolume.objects.get(symbol="TIES", mpid="ZZZZ")
    assert vv.avg_trade_size == Decimal(10) and vv.line_no == 16


def test_avg_trade_size_rounds_half_up(tmp_path: Path) -> None:
    # 1/32 = 0.03125 -> 0.0313; 2/3 -> 0.6667; 200001/200000 = 1.000005 -> 1.0000
    run_etl(
        write_file(
            tmp_path,
            [
                row("AAAA", "OTCN", 1, 32),
                row("BBBB", "OTCN", 2, 3),
                row("CCCC", "OTCN", 200001, 200000),
            ],  # fmt: skip
        )
    )
    got = dict(VenueVolume.objects.values_list("symbol", "avg_trade_size"))
    assert got == {
        "AAAA": Decimal("0.0313"),
        "BBBB": Decimal("0.6667"),
        "CCCC": Decimal("1.0000"),
    }


def weekly(tmp_path: Path, week: date, volumes: dict[str, int], name: str = "") -> int:
    lines = [row(symbol, "OTCN", volume, 1) for symbol, volume in volumes.items()]
    path = write_file(tmp_path, lines, name or f"w{week:%Y%m%d}.psv")
    return run_etl(path, week=week)["capture_id"]


def test_rolling_averages_trend_and_weeks_in_window(tmp_path: Path) -> None:
    weeks = [WEEK + timedelta(weeks=i) for i in range(7)]
    series = {
        "UPPP": [100, 100, 100, 100, 100, 100, 111],  # +11% over the earlier average
        "EDGE": [100, 100, 100, 100, 100, 100, 110],  # exactly +10%: stable
        "DOWN": [None, None, None, None, 100, 200, 134],  # 134 < 150 * 0.9
        "GONE": [5, 5, 5, 5, 5, 5, None],  # absent in the last week: no rolling row
    }
    for i, week in enumerate(weeks):
        weekly(tmp_path, week, {s: v[i] for s, v in series.items() if v[i] is not None})
    last = {r.symbol: r for r in selectors.symbol_rolling(tier="OTC", week=weeks[-1])}
    assert set(last) == {"UPPP", "EDGE", "DOWN"}
    assert (last["UPPP"].trend, last["EDGE"].trend, last["DOWN"].trend) == ("up", "stable", "down")
    assert last["UPPP"].weeks_in_window == 6  # the window is six weeks, not seven
    assert last["UPPP"].window_start == weeks[1]
    assert last["UPPP"].avg_volume == Decimal("101.8333")  # 611 / 6
    assert last["DOWN"].weeks_in_window == 3
    assert last["DOWN"].avg_volume == Decimal("144.6667")
    first = selectors.symbol_rolling(tier="OTC", week=weeks[0], symbol="UPPP").get()
    assert (first.weeks_in_window, first.trend) == (1, None)


def test_correction_supersedes_and_as_of_keeps_the_old_answer(tmp_path: Path) -> None:
    old_id = weekly(tmp_path, WEEK, {"AAAA": 100, "BBBB": 300}, "a.psv")
    next_id = weekly(tmp_path, WEEK + timedelta(weeks=1), {"AAAA": 100}, "b.psv")
    before = utc_now()
    old_rolling = SymbolRolling.objects.get(capture_id=next_id, symbol="AAAA")
    assert old_rolling.avg_volume == Decimal(100)

    new_id = weekly(tmp_path, WEEK, {"AAAA": 300, "BBBB": 300}, "c.psv")

    assert new_id != old_id
    now_aaaa = selectors.symbol_summaries(tier="OTC", week=WEEK, symbol="AAAA").get()
    then_aaaa = selectors.symbol_summaries(tier="OTC", week=WEEK, symbol="AAAA", as_of=before)
    assert (now_aaaa.capture_id, now_aaaa.total_volume) == (new_id, 300)
    assert [(s.capture_id, s.total_volume) for s in then_aaaa] == [(old_id, 100)]
    assert selectors.current_capture(tier="OTC", week=WEEK, as_of=before).pk == old_id
    assert [c.pk for c in selectors.capture_versions(tier="OTC", week=WEEK)] == [new_id, old_id]
    shares_then = selectors.venue_shares(tier="OTC", week=WEEK, as_of=before).get()
    assert shares_then.total_volume == 400

    # the following week's rolling window was recomputed with the corrected week ...
    now_rolling = selectors.symbol_rolling(tier="OTC", week=WEEK + timedelta(weeks=1)).get()
    assert now_rolling.avg_volume == Decimal(200) and now_rolling.trend == "down"
    # ... and the answer given before the correction is still there
    then_rolling = selectors.symbol_rolling(
        tier="OTC", week=WEEK + timedelta(weeks=1), as_of=before
    ).get()
    assert then_rolling.pk == old_rolling.pk and then_rolling.avg_volume == Decimal(100)
    report = selectors.quality_report(tier="OTC", week=WEEK + timedelta(weeks=1))
    assert report is not None and report.prior_capture_id == new_id
    assert selectors.available_weeks(tier="OTC") == [WEEK + timedelta(weeks=1), WEEK]
    assert selectors.available_weeks(tier="OTC", as_of=before - timedelta(days=1)) == []


def test_recompute_is_idempotent_for_per_capture_analytics(tmp_path: Path) -> None:
    capture_id = weekly(tmp_path, WEEK, {"AAAA": 100, "BBBB": 300})
    first = list(SymbolWeekSummary.objects.values("symbol", "total_volume", "hhi"))
    compute_capture(capture_id)
    assert list(SymbolWeekSummary.objects.values("symbol", "total_volume", "hhi")) == first
    assert SymbolRolling.objects.filter(capture_id=capture_id).count() == 4  # 2 versions
    assert selectors.symbol_rolling(tier="OTC", week=WEEK).count() == 2


def test_venue_upsert_keeps_latest_name_and_seen_range(tmp_path: Path) -> None:
    late = write_file(tmp_path, [row("AAAA", "OTCN", 1, 1, venue="NEW NAME")], "late.psv")
    early = write_file(tmp_path, [row("AAAA", "OTCN", 1, 1, venue="OLD NAME")], "early.psv")
    run_etl(late, week=WEEK)
    run_etl(early, week=WEEK - timedelta(weeks=3))
    venue = selectors.venues(mpid="otcn").get()
    assert (venue.name, venue.first_seen_week, venue.last_seen_week) == (
        "NEW NAME",
        WEEK - timedelta(weeks=3),
        WEEK,
    )


def test_venue_shares_across_tiers(tmp_path: Path) -> None:
    run_etl(write_file(tmp_path, [row("AAAA", "OTCN", 300, 1)], "o.psv"), tier="OTC")
    t1 = [row("BBBB", "OTCN", 100, 1, tier="T1"), row("BBBB", "JNST", 600, 1, tier="T1")]
    run_etl(write_file(tmp_path, t1, "t.psv"), tier="T1")
    rows = selectors.venue_shares_across_tiers(week=WEEK)
    assert [(r["mpid"], r["volume"], r["market_share"], r["rank"]) for r in rows] == [
        ("JNST", 600, Decimal("60.0000"), 1),
        ("OTCN", 400, Decimal("40.0000"), 2),
    ]


def test_capture_and_row_selectors(tmp_path: Path) -> None:
    good = [row("AAAA", "OTCN", 10, 1), *(row(f"F{i:03d}", "OTCX", 5, 1) for i in range(20))]
    lines = [*good, row("BBBB", "OTCN", "bad", 1)]
    first = run_etl(write_file(tmp_path, lines, "a.psv"))["capture_id"]
    between = utc_now()
    second = run_etl(write_file(tmp_path, good, "b.psv"))["capture_id"]

    assert [c.pk for c in selectors.captures(tier="OTC")] == [second, first]
    assert [c.pk for c in selectors.captures(include_superseded=False)] == [second]
    assert [c.pk for c in selectors.captures(include_superseded=False, as_of=between)] == [first]
    assert [c.pk for c in selectors.captures(as_of=between)] == [first]
    assert [r.line_no for r in selectors.raw_rows(first)] == list(range(2, 24))
    assert [(r.line_no, r.kind) for r in selectors.rejects(first)] == [(23, "invalid")]
    assert selectors.venue_volumes(week=WEEK, symbol="aaaa", mpid="otcn").get().capture_id == second
    assert not selectors.venue_volumes(week=WEEK, tier="T1").exists()
    assert selectors.current_capture(tier="T2", week=WEEK) is None
    with pytest.raises(ValueError, match="aware datetime"):
        selectors.current_capture(tier="OTC", week=WEEK, as_of=between.replace(tzinfo=None))


def test_rolling_window_is_the_anchor_and_the_current_captures_of_five_weeks_before(
    tmp_path: Path,
) -> None:
    weeks = [WEEK + timedelta(weeks=i) for i in range(8)]
    ids = [weekly(tmp_path, week, {"AAAA": 100 + i}) for i, week in enumerate(weeks)]
    other_tier = run_etl(
        write_file(tmp_path, [row("AAAA", "OTCN", 5, 1, tier="T1")], "t1.psv"),
        tier="T1",
        week=weeks[6],
    )["capture_id"]
    corrected = weekly(tmp_path, weeks[5], {"AAAA": 900}, "corrected.psv")  # supersedes ids[5]

    window = window_captures(Capture.objects.get(pk=ids[7]))

    assert window[0] == ids[7]
    assert sorted(window[1:]) == sorted([ids[2], ids[3], ids[4], corrected, ids[6]])
    assert other_tier not in window and ids[5] not in window and ids[1] not in window
    rolled = SymbolRolling.objects.get(capture_id=ids[7], symbol="AAAA", replaced_at=None)
    assert rolled.weeks_in_window == 6
    assert rolled.window_volume == 102 + 103 + 104 + 900 + 106 + 107
