"""The sample-data generator: exact format, determinism, realism and injected faults."""

from __future__ import annotations

import io
import re
import tracemalloc
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otc.parser import HEADER, ParsedRow, WeeklyFileParser
from otc.sample.generator import (
    MALFORMED_KINDS,
    GeneratedWeek,
    SymbolUniverse,
    generate_week,
    generate_weeks,
    week_monday,
)

MONDAY = date(2025, 11, 17)
TIERS = ("T1", "T2", "OTC")
#: Which parser reject reason each malformed kind must produce.
REASON_PREFIX = {
    "non_numeric_volume": "non-numeric totalWeeklyShareQuantity",
    "negative_trade_count": "negative totalWeeklyTradeCount",
    "empty_symbol": "empty issueSymbolIdentifier",
    "empty_mpid": "empty MPID",
    "wrong_field_count": "expected 8 fields",
}


def generate(
    tier: str = "OTC", rows: int = 2000, seed: int = 7, *, ats: bool = False, **kwargs: float
) -> tuple[bytes, GeneratedWeek]:
    buffer = io.BytesIO()
    result = generate_week(buffer, tier=tier, week=MONDAY, rows=rows, seed=seed, ats=ats, **kwargs)
    return buffer.getvalue(), result


def parse(data: bytes, tier: str) -> tuple[list[ParsedRow], WeeklyFileParser]:
    parser = WeeklyFileParser(io.BytesIO(data), expected_tier=tier)
    return list(parser), parser


@pytest.mark.parametrize("tier", TIERS)
@pytest.mark.parametrize("rows", [1, 2, 7, 1500])
def test_exact_row_count_and_header(tier: str, rows: int) -> None:
    data, result = generate(tier, rows)
    lines = data.decode().split("\n")
    assert lines[0] == "|".join(HEADER)
    assert lines[-1] == ""  # newline-terminated
    assert len(lines) - 2 == rows == result.rows == result.clean_rows


@pytest.mark.parametrize("tier", TIERS)
def test_clean_file_parses_back_and_conserves_totals(tier: str) -> None:
    data, result = generate(tier, 3000)
    rows, parser = parse(data, tier)

    assert parser.rejects == 0
    assert len(rows) == result.clean_rows == 3000
    assert sum(row.share_quantity or 0 for row in rows) == result.clean_share_volume
    assert sum(row.trade_count or 0 for row in rows) == result.clean_trade_count
    assert len({row.symbol for row in rows}) == result.symbols
    assert Counter((row.symbol, row.mpid) for row in rows).most_common(1)[0][1] == 1
    assert result.rejected_rows == 0
    assert result.malformed == dict.fromkeys(MALFORMED_KINDS, 0)


@pytest.mark.parametrize(("tier", "lag"), [("T1", 21), ("T2", 35), ("OTC", 35)])
def test_last_update_date_follows_publication_lag(tier: str, lag: int) -> None:
    data, result = generate(tier, 200)
    _rows, parser = parse(data, tier)
    assert result.week == MONDAY
    assert result.last_update_date == MONDAY + timedelta(days=lag)
    assert parser.last_update_dates == {MONDAY + timedelta(days=lag)}


def test_any_day_of_the_week_means_its_monday() -> None:
    wednesday = MONDAY + timedelta(days=2)
    assert week_monday(wednesday) == MONDAY
    buffer = io.BytesIO()
    result = generate_week(buffer, tier="T1", week=wednesday, rows=50, seed=7, ats=False)
    assert result.week == MONDAY
    assert buffer.getvalue() == generate("T1", 50)[0]


def test_same_seed_same_bytes_other_seed_other_bytes() -> None:
    assert generate("T2", 500, seed=3)[0] == generate("T2", 500, seed=3)[0]
    assert generate("T2", 500, seed=3)[0] != generate("T2", 500, seed=4)[0]


@pytest.mark.parametrize("tier", TIERS)
def test_rows_look_like_finra_data(tier: str) -> None:
    data, _result = generate(tier, 4000, seed=11)
    rows, _parser = parse(data, tier)

    assert all(re.fullmatch(r"[A-Z]{1,5}", row.symbol) for row in rows)
    assert all(re.fullmatch(r"[A-Z]{4}", row.mpid) for row in rows)
    assert all(row.venue_name.startswith(row.mpid + " ") for row in rows)
    assert all(row.issue_name for row in rows)
    # FINRA's order: by symbol, then by venue name.
    keys = [(row.symbol, row.venue_name) for row in rows]
    assert keys == sorted(keys)
    # Symbols spread over the whole alphabet, not bunched at the start.
    assert {row.symbol[0] for row in rows} >= set("ABCXYZ")
    # Trades never exceed shares; big prints average 50-2,000 shares a trade (less rounding).
    assert all(1 <= (row.trade_count or 0) <= (row.share_quantity or 0) for row in rows)
    sizes = [row.share_quantity / row.trade_count for row in rows if row.share_quantity > 10_000]
    assert sizes and 45 <= min(sizes) and max(sizes) <= 2_000
    # Venue popularity is skewed: the busiest venue trades several times the median venue.
    per_venue: Counter[str] = Counter()
    for row in rows:
        per_venue[row.mpid] += row.share_quantity or 0
    shares = sorted(per_venue.values(), reverse=True)
    assert shares[0] >= 3 * shares[len(shares) // 2]
    # Volumes are heavy-tailed: the top 1% of rows carry a large share of the volume.
    volumes = sorted((row.share_quantity or 0 for row in rows), reverse=True)
    assert sum(volumes[: len(volumes) // 100]) > 0.1 * sum(volumes)


#: MPIDs of alternative trading systems (FINRA's ATS summary) among the generated venues.
ATS_MPIDS = {
    "INCR", "UBSA", "EBXL", "SGMT", "JPMX", "MLIX", "MSPL", "BIDS", "IATS", "CGXS",
    "LATS", "ICBX", "KCGM", "JPBX", "XSTM", "MSTX", "MSRP", "LMNX", "STFX",
}  # fmt: skip
#: Member firms that trade outside an ATS (FINRA's non-ATS summary).
NON_ATS_MPIDS = {
    "CDRG", "NITE", "JNST", "ETMM", "HRTF", "SOHO", "UBSS", "GSCO", "MSCO", "JPMS",
    "INTL", "CANT", "MAXM",
}  # fmt: skip


@pytest.mark.parametrize("tier", ["T1", "T2"])
def test_ats_files_list_atss_and_non_ats_files_member_firms(tier: str) -> None:
    ats_rows, _ = parse(generate(tier, 3000, seed=4, ats=True)[0], tier)
    firm_rows, _ = parse(generate(tier, 3000, seed=4, ats=False)[0], tier)
    ats_venues = {row.mpid for row in ats_rows}
    firms = {row.mpid for row in firm_rows}
    assert ats_venues <= ATS_MPIDS and len(ats_venues) >= 10
    assert firms <= NON_ATS_MPIDS and len(firms) >= 8
    # The busiest venues of each summary are the ones FINRA's data shows busiest.
    assert {"INCR", "UBSA"} <= ats_venues and {"CDRG", "NITE"} <= firms
    assert not ats_venues & firms
    assert any(row.venue_name == "UBSA UBS ATS" for row in ats_rows)
    assert not any("UBS ATS" in row.venue_name or "SIGMA X2" in row.venue_name for row in firm_rows)


def test_otc_ats_files_hold_the_real_files_atss_and_non_ats_files_firms(
    real_otc_file: Path,
) -> None:
    with real_otc_file.open("rb") as stream:
        real = {(row.mpid, row.venue_name) for row in WeeklyFileParser(stream, expected_tier="OTC")}
    ats_rows, _ = parse(generate("OTC", 3000, seed=4, ats=True)[0], "OTC")
    firm_rows, _ = parse(generate("OTC", 3000, seed=4, ats=False)[0], "OTC")
    assert {(row.mpid, row.venue_name) for row in ats_rows} <= real
    firms = {row.mpid for row in firm_rows}
    assert firms <= NON_ATS_MPIDS and {"NITE", "CDRG"} <= firms
    assert not firms & {mpid for mpid, _name in real}


def test_generated_weeks_are_named_by_summary(tmp_path: Path) -> None:
    common = {"tier": "T1", "start_week": MONDAY, "weeks": 1, "rows": 50, "seed": 3}
    ats = generate_weeks(tmp_path, ats=True, **common)  # type: ignore[arg-type]
    firms = generate_weeks(tmp_path, ats=False, **common)  # type: ignore[arg-type]
    assert [p.name for p in ats] == [f"finra_t1_ats_{MONDAY:%Y%m%d}.psv"]
    assert [p.name for p in firms] == [f"finra_t1_non_ats_{MONDAY:%Y%m%d}.psv"]
    assert ats[0].read_bytes() != firms[0].read_bytes()


def test_names_exercise_awkward_characters() -> None:
    data, _result = generate("T2", 20_000, seed=5)
    rows, parser = parse(data, "T2")
    assert parser.rejects == 0
    text = "".join(row.issue_name + row.venue_name for row in rows)
    assert all(char in text for char in ',"$()&')


def test_malformed_rows_are_counted_and_rejected_as_reported() -> None:
    data, result = generate("OTC", 5000, seed=9, malformed_ratio=0.1)
    rows, parser = parse(data, "OTC")

    assert all(result.malformed[kind] > 0 for kind in MALFORMED_KINDS)
    assert result.clean_rows + sum(result.malformed.values()) == result.rows == len(rows)
    assert parser.rejects == result.rejected_rows
    reasons = Counter(
        next(kind for kind, prefix in REASON_PREFIX.items() if row.reject_reason.startswith(prefix))
        for row in rows
        if row.reject_reason
    )
    assert reasons == {kind: result.malformed[kind] for kind in REASON_PREFIX}

    accepted = [row for row in rows if row.reject_reason is None]
    # Duplicates pass the parser; only a set-based check (SQL at ingest) can see them.
    keys = Counter((row.symbol, row.mpid) for row in accepted)
    assert sum(count - 1 for count in keys.values()) == result.malformed["duplicate"]
    assert sum(row.share_quantity or 0 for row in accepted) == (
        result.clean_share_volume + result.duplicate_share_volume
    )


def test_malformed_rows_replace_rows_of_the_clean_twin() -> None:
    clean, _ = generate("T1", 3000, seed=2)
    dirty, result = generate("T1", 3000, seed=2, malformed_ratio=0.05)
    clean_lines, dirty_lines = clean.split(b"\n"), dirty.split(b"\n")
    assert len(clean_lines) == len(dirty_lines)
    changed = sum(a != b for a, b in zip(clean_lines, dirty_lines, strict=True))
    assert changed == sum(result.malformed.values()) > 0


def test_every_row_can_be_malformed() -> None:
    data, result = generate("T2", 300, seed=1, malformed_ratio=1.0)
    assert result.clean_rows == 0
    assert sum(result.malformed.values()) == 300
    rows, parser = parse(data, "T2")
    assert len(rows) == 300
    assert parser.rejects == result.rejected_rows


def test_generate_weeks_names_files_and_churns_symbols(tmp_path: Path) -> None:
    paths = generate_weeks(
        tmp_path / "out",
        tier="OTC",
        start_week=MONDAY + timedelta(days=3),
        weeks=4,
        rows=3000,
        seed=21,
        ats=False,
    )
    assert [path.name for path in paths] == [
        f"finra_otc_non_ats_{MONDAY + timedelta(weeks=n):%Y%m%d}.psv" for n in range(4)
    ]
    weeks = []
    for path in paths:
        with path.open("rb") as stream:
            rows = list(WeeklyFileParser(stream, expected_tier="OTC"))
        assert len(rows) == 3000
        assert all(row.reject_reason is None for row in rows)
        weeks.append({row.symbol: row.issue_name for row in rows})
    for before, after in zip(weeks, weeks[1:], strict=False):
        common = before.keys() & after.keys()
        assert before.keys() - after.keys() and after.keys() - before.keys()  # churn
        assert len(common) > 0.6 * len(before)  # but mostly the same market
        assert all(before[symbol] == after[symbol] for symbol in common)  # stable names
    assert not list(tmp_path.glob("out/.*"))  # no partial files left behind


def test_generate_weeks_is_deterministic(tmp_path: Path) -> None:
    kwargs = {"tier": "T1", "start_week": MONDAY, "weeks": 2, "rows": 400, "seed": 5, "ats": True}
    first = [path.read_bytes() for path in generate_weeks(tmp_path / "a", **kwargs)]
    second = [path.read_bytes() for path in generate_weeks(tmp_path / "b", **kwargs)]
    assert first == second
    assert first[0] != first[1]


def test_liquidity_persists_from_week_to_week() -> None:
    universe = SymbolUniverse.for_rows("T2", 3000, seed=8, ats=False)
    totals = []
    for week in (MONDAY, MONDAY + timedelta(weeks=1)):
        buffer = io.BytesIO()
        generate_week(
            buffer, tier="T2", week=week, rows=3000, seed=8, symbol_universe=universe, ats=False
        )
        volume: Counter[str] = Counter()
        for row in parse(buffer.getvalue(), "T2")[0]:
            volume[row.symbol] += row.share_quantity or 0
        totals.append(volume)
    top_before = {symbol for symbol, _ in totals[0].most_common(50)}
    top_after = {symbol for symbol, _ in totals[1].most_common(50)}
    assert len(top_before & top_after) >= 30


def test_text_stream_and_path_targets(tmp_path: Path) -> None:
    text = io.StringIO()
    generate_week(text, tier="OTC", week=MONDAY, rows=100, seed=7, ats=False)
    path = tmp_path / "week.psv"
    result = generate_week(path, tier="OTC", week=MONDAY, rows=100, seed=7, ats=False)
    assert result.path == path
    assert text.getvalue().encode() == path.read_bytes() == generate("OTC", 100)[0]
    assert [p.name for p in tmp_path.iterdir()] == ["week.psv"]


def test_failed_write_leaves_no_file_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*_args: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr("otc.sample.generator._FaultInjector.corrupt", explode)
    target = tmp_path / "week.psv"
    with pytest.raises(RuntimeError, match="disk full"):
        generate_week(
            target, tier="T1", week=MONDAY, rows=500, seed=1, malformed_ratio=1.0, ats=False
        )
    assert list(tmp_path.iterdir()) == []


def test_universe_too_small_for_the_rows_is_refused_before_writing(tmp_path: Path) -> None:
    target = tmp_path / "week.psv"
    universe = SymbolUniverse("T1", 1, seed=1, ats=False)
    with pytest.raises(ValueError, match="fewer than the 5000 requested"):
        generate_week(
            target, tier="T1", week=MONDAY, rows=5000, seed=1, symbol_universe=universe, ats=False
        )
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"tier": "T3"}, "unknown tier 'T3'"),
        ({"rows": 0}, "rows must be at least 1"),
        ({"malformed_ratio": 1.5}, "malformed_ratio must be between 0 and 1"),
        (
            {"symbol_universe": SymbolUniverse("T1", 100, 1, ats=False)},
            "universe is for tier T1, not OTC",
        ),
        (
            {"symbol_universe": SymbolUniverse("OTC", 100, 1, ats=True)},
            "universe is for the ATS summary, not the non-ATS",
        ),
    ],
)
def test_bad_arguments(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "tier": "OTC",
        "week": MONDAY,
        "rows": 10,
        "seed": 1,
        "ats": False,
    }
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=re.escape(message)):
        generate_week(io.BytesIO(), **arguments)  # type: ignore[arg-type]


def test_memory_stays_flat() -> None:
    class Sink(io.RawIOBase):
        def writable(self) -> bool:
            return True

        def write(self, data: bytes) -> int:  # type: ignore[override]
            return len(data)

    tracemalloc.start()
    try:
        generate_week(Sink(), tier="OTC", week=MONDAY, rows=12_000, seed=1, ats=False)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * 1024 * 1024  # a 4,096-row write buffer, nothing per row or symbol


@settings(max_examples=40, deadline=None)
@given(
    tier=st.sampled_from(TIERS),
    rows=st.integers(min_value=1, max_value=400),
    seed=st.integers(min_value=0, max_value=2**32),
    week=st.dates(min_value=date(2001, 1, 1), max_value=date(2040, 12, 31)),
)
def test_any_week_has_exactly_the_rows_asked_and_parses_clean(
    tier: str, rows: int, seed: int, week: date
) -> None:
    buffer = io.BytesIO()
    result = generate_week(buffer, tier=tier, week=week, rows=rows, seed=seed, ats=False)
    parsed, parser = parse(buffer.getvalue(), tier)
    assert len(parsed) == rows == result.clean_rows
    assert parser.rejects == 0
    assert len({(row.symbol, row.mpid) for row in parsed}) == rows
    assert sum(row.share_quantity or 0 for row in parsed) == result.clean_share_volume


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(min_value=1, max_value=300),
    seed=st.integers(min_value=0, max_value=1000),
    ratio=st.floats(min_value=0.0, max_value=1.0),
)
def test_malformed_accounting_holds_for_any_ratio(rows: int, seed: int, ratio: float) -> None:
    data, result = generate("OTC", rows, seed=seed, malformed_ratio=ratio)
    parsed, parser = parse(data, "OTC")
    assert len(parsed) == rows == result.clean_rows + sum(result.malformed.values())
    assert parser.rejects == result.rejected_rows
