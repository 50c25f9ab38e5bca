"""Realistic FINRA OTC weekly files for demos, tests and benchmarks."""

from __future__ import annotations

import io
import os
from bisect import bisect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from functools import cache
from itertools import accumulate
from math import ceil, exp, log
from pathlib import Path
from random import Random
from typing import IO

from otc.parser import HEADER, parse_tier, tier_description_for

__all__ = [
    "MALFORMED_KINDS",
    "PARSER_REJECTED_KINDS",
    "GeneratedWeek",
    "SymbolUniverse",
    "generate_week",
    "generate_weeks",
    "summary_name",
    "week_file_name",
    "week_monday",
]

#: Kinds of malformed rows the generator can inject, in the order they are reported.
MALFORMED_KINDS: tuple[str, ...] = (
    "non_numeric_volume",
    "negative_trade_count",
    "empty_symbol",
    "empty_mpid",
    "wrong_field_count",
    "duplicate",
)
#: Kinds the parser rejects by itself; duplicates only show up in set-based checks.
PARSER_REJECTED_KINDS: tuple[str, ...] = MALFORMED_KINDS[:-1]

# Venues in popularity order (most active first); popularity follows a Zipf law. The
# ATS summary lists alternative trading systems, the non-ATS summary the member firms
# that trade off-exchange outside an ATS (wholesalers, broker-dealers): FINRA publishes
# them as separate files, so a generated file holds one kind only.
_NMS_ATS_VENUES: tuple[tuple[str, str], ...] = (
    ("INCR", "INTELLIGENT CROSS LLC"),
    ("UBSA", "UBS ATS"),
    ("EBXL", "LEVEL ATS"),
    ("SGMT", "SIGMA X2"),
    ("JPMX", "JPM-X"),
    ("MLIX", "INSTINCT X"),
    ("MSPL", "MS POOL (ATS-4)"),
    ("BIDS", "BIDS ATS"),
    ("IATS", "IBKR ATS"),
    ("CGXS", "ONECHRONOS"),
    ("LATS", "THE BARCLAYS ATS"),
    ("ICBX", "CBX"),
    ("KCGM", "VIRTU MATCHIT ATS"),
    ("JPBX", "JPB-X"),
    ("XSTM", "CROSSSTREAM"),
    ("MSTX", "MS TRAJECTORY CROSS (ATS-1)"),
    ("MSRP", "MS RPOOL (ATS-6)"),
    ("LMNX", "LUMINEX ATS"),
    ("STFX", "STIFEL X ATS"),
)
_NMS_NON_ATS_VENUES: tuple[tuple[str, str], ...] = (
    ("CDRG", "CITADEL SECURITIES LLC"),
    ("NITE", "VIRTU AMERICAS LLC"),
    ("JNST", "JANE STREET CAPITAL, LLC"),
    ("ETMM", "G1 EXECUTION SERVICES, LLC"),
    ("HRTF", "HRT FINANCIAL LP"),
    ("SOHO", "TWO SIGMA SECURITIES, LLC"),
    ("UBSS", "UBS SECURITIES LLC"),
    ("GSCO", "GOLDMAN SACHS & CO. LLC"),
    ("MSCO", "MORGAN STANLEY & CO. LLC"),
    ("JPMS", "J.P. MORGAN SECURITIES LLC"),
    ("INTL", "STONEX FINANCIAL INC."),
    ("CANT", "CANTOR FITZGERALD & CO."),
    ("MAXM", "MAXIM GROUP LLC"),
)
#: The ATSs of FINRA's real OTC-equities ATS file (``shared/finra``).
_OTC_ATS_VENUES: tuple[tuple[str, str], ...] = (
    ("OTCN", "OTC LINK NQB IDQS"),
    ("OTCX", "OTC LINK ECN ATS"),
    ("ARCA", "GLOBAL OTC"),
    ("PPEX", "NORTH CAPITAL PRIVATE SECURITIES CORPORATION"),
    ("PROS", "TZERO SECURITIES LLC"),
    ("ALTS", "LODAS SECURITIES ALTERNATIVE TRADING SYSTEM"),
    ("SMKT", "SECURITIZE MARKETS ATS"),
    ("STEN", "STARTENGINE SECONDARY"),
    ("SWCL", "INX SECURITIES, LLC"),
)
_OTC_NON_ATS_VENUES: tuple[tuple[str, str], ...] = (
    ("NITE", "VIRTU AMERICAS LLC"),
    ("CDRG", "CITADEL SECURITIES LLC"),
    ("ETMM", "G1 EXECUTION SERVICES, LLC"),
    ("INTL", "STONEX FINANCIAL INC."),
    ("JNST", "JANE STREET CAPITAL, LLC"),
    ("CANT", "CANTOR FITZGERALD & CO."),
)
#: Venues of each tier's (ATS, non-ATS) summaries.
_VENUES: dict[str, dict[bool, tuple[tuple[str, str], ...]]] = {
    "T1": {True: _NMS_ATS_VENUES, False: _NMS_NON_ATS_VENUES},
    "T2": {True: _NMS_ATS_VENUES, False: _NMS_NON_ATS_VENUES},
    "OTC": {True: _OTC_ATS_VENUES, False: _OTC_NON_ATS_VENUES},
}

_STEMS = (
    "Apex", "Atlas", "Aurora", "Beacon", "Blue Ridge", "Cascade", "Cedar", "Crescent",
    "Delta", "Evergreen", "Falcon", "Frontier", "Granite", "Harbor", "Horizon", "Iron",
    "Juniper", "Keystone", "Lakeshore", "Liberty", "Meridian", "Northwind", "Oakmont",
    "Pacific", "Pinnacle", "Quantum", "Redwood", "Sierra", "Silverline", "Summit",
    "Tidewater", "Trinity", "Unity", "Vertex", "Westbrook", "Willow", "Zenith", "Osprey",
)  # fmt: skip
_SECTORS = (
    "Therapeutics", "Energy", "Minerals", "Technologies", "Bancorp", "Resources",
    "Pharmaceuticals", "Semiconductor", "Capital", "Mining", "Biosciences", "Networks",
    "Logistics", "Foods", "Realty", "Gold", "Lithium", "Software", "Industries", "Brands",
    "Aerospace", "Media", "Health", "Robotics",
)  # fmt: skip
_FORMS = ("Inc.", "Corp.", "Ltd.", "Co.", "Group Inc.", "Holdings Inc.", "PLC", "N.V.", "AG")
_COUNTRIES = (
    "Canada", "Japan", "Germany", "United Kingdom", "Australia", "Hong Kong", "France",
    "Switzerland", "Cayman Islands", "Netherlands", "Brazil", "South Africa", "Sweden", "Mexico",
)  # fmt: skip
_ETF_ISSUERS = ("Summit Shares", "Meridian Funds", "Keystone Trust", "Harbor Peak")
_ETF_THEMES = (
    "U.S. Large Cap", "Dividend Growth", "Short-Term Treasury", "Semiconductor",
    "Clean Energy", "Total Bond Market", "Emerging Markets", "Gold Miners",
)  # fmt: skip
_SUFFIX_KINDS = {"W": "Warrants", "U": "Units", "R": "Rights"}

_KIND = {True: "ATS", False: "non-ATS"}
_Write = Callable[[str], object]
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_EPOCH_MONDAY = date(2000, 1, 3)
_MIN_SLOTS = 64
_CHUNK_ROWS = 4096
_LISTED_FRACTION = 0.93
#: Universe headroom over the expected weekly rows; the surplus is thinned away.
_SIZE_MARGIN = 1.08


@dataclass(frozen=True, slots=True)
class _TierProfile:
    """Everything that makes one tier's files look like that tier."""

    code: str
    max_venues: int  # at most this many venues per symbol; 0: every venue of the summary
    zipf_exponent: float
    log_median_volume: float
    volume_sigma: float
    venue_bias: float
    venue_slope: float
    skip_probability: float
    publication_lag_days: int
    length_cdf: tuple[float, ...]  # cumulative probability of wanting 1..4 letters
    suffixes: str  # fifth letters for 5-letter symbols, repeated to weight them
    venues: tuple[tuple[str, str], ...] = ()  # set per summary by ``_profile``


_PROFILES: dict[str, _TierProfile] = {
    "T1": _TierProfile(
        code="T1",
        max_venues=0,
        zipf_exponent=0.8,
        log_median_volume=log(1_500_000),
        volume_sigma=1.2,
        venue_bias=0.2,
        venue_slope=1.1,
        skip_probability=0.01,
        publication_lag_days=21,
        length_cdf=(0.02, 0.12, 0.52, 1.0),
        suffixes="",
    ),
    "T2": _TierProfile(
        code="T2",
        max_venues=0,
        zipf_exponent=1.0,
        log_median_volume=log(150_000),
        volume_sigma=1.6,
        venue_bias=-1.6,
        venue_slope=1.2,
        skip_probability=0.04,
        publication_lag_days=35,
        length_cdf=(0.005, 0.035, 0.285, 0.935),
        suffixes="WUR",
    ),
    "OTC": _TierProfile(
        code="OTC",
        max_venues=3,
        zipf_exponent=1.3,
        log_median_volume=log(8_000),
        volume_sigma=2.3,
        venue_bias=0.5,
        venue_slope=1.0,
        skip_probability=0.12,
        publication_lag_days=35,
        length_cdf=(0.0, 0.0, 0.01, 0.21),
        suffixes="FFFFYYYYYQ",
    ),
}


@cache
def _profile(tier: str, ats: bool) -> _TierProfile:
    """The tier's profile with the venues of its ATS or its non-ATS summary."""
    base = _PROFILES[tier]
    venues = _VENUES[tier][ats]
    top = min(base.max_venues or len(venues), len(venues))
    return replace(base, venues=venues, max_venues=top)


def summary_name(ats: bool) -> str:
    """``ats`` or ``non_ats``: which summary a generated file is, as its name says."""
    return "ats" if ats else "non_ats"


def week_file_name(tier: str, week: date, *, ats: bool) -> str:
    """``finra_<tier>_<ats|non_ats>_<YYYYMMDD of the Monday>.psv``."""
    return f"finra_{parse_tier(tier).lower()}_{summary_name(ats)}_{week_monday(week):%Y%m%d}.psv"


@dataclass(slots=True)
class GeneratedWeek:
    """What was written, so tests can check that ingest conserves rows and volume.

    ``clean_*`` totals cover rows that are neither malformed nor duplicates. The parser
    rejects ``rejected_rows`` rows; duplicates parse as valid rows (their volume is in
    ``duplicate_share_volume``) and only set-based checks catch them.
    """

    path: Path | None
    tier: str
    ats: bool
    week: date
    last_update_date: date
    rows: int
    clean_rows: int = 0
    clean_share_volume: int = 0
    clean_trade_count: int = 0
    symbols: int = 0
    duplicate_share_volume: int = 0
    malformed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(MALFORMED_KINDS, 0))

    @property
    def rejected_rows(self) -> int:
        """Rows the parser is expected to reject: every malformed kind but duplicates."""
        return sum(self.malformed[kind] for kind in PARSER_REJECTED_KINDS)


class SymbolUniverse:
    """A stable, sorted sequence of symbols for one tier and seed, never materialised.

    Slot ``k`` owns the bucket ``[k*S/size, (k+1)*S/size)`` of the space of ``S`` base
    symbols, so symbols come out sorted, unique and spread over the alphabet. Each slot
    also carries a liquidity score and a listing cycle that decide, week by week,
    whether and how much its symbol trades.
    """

    def __init__(self, tier: str, size: int, seed: int, *, ats: bool) -> None:
        if size < 1:
            raise ValueError(f"a symbol universe needs at least one slot, got {size}")
        self.tier = parse_tier(tier)
        self.ats = ats
        self.profile = _profile(self.tier, ats)
        self.size = size
        self.seed = seed
        self.base_length = 4 if size <= 26**4 // 2 else 5
        self.space = 26**self.base_length
        if size > self.space:
            raise ValueError(f"at most {self.space} symbols fit in 5 letters, got {size}")

    @classmethod
    def for_rows(cls, tier: str, rows: int, seed: int, *, ats: bool) -> SymbolUniverse:
        """A universe sized so that a week of ``rows`` rows draws on most of it."""
        profile = _profile(parse_tier(tier), ats)
        per_slot = _expected_venues(profile) * _LISTED_FRACTION * (1 - profile.skip_probability)
        size = min(26**5, max(_MIN_SLOTS, ceil(_SIZE_MARGIN * rows / per_slot)))
        return cls(tier, size, seed, ats=ats)

    def week_slots(self, week_no: int) -> Iterator[tuple[int, float, int, int, bool]]:
        """Per slot: ``(rank, liquidity, bits, venues, skipped)`` for one week.

        ``rank``, ``liquidity`` and ``bits`` come from the universe's own stream and are
        the same every week; ``venues`` is how many venue rows the symbol would like this
        week (0 while it is unlisted) and ``skipped`` whether it sits the week out. Both
        generator passes replay this sequence, so it depends on nothing but its inputs.
        """
        universe = Random(f"otc-universe:{self.tier}:{self.seed}:{self.size}")
        uniform, randbits = universe.random, universe.getrandbits
        weekly = Random(f"otc-week:{self.tier}:{self.seed}:{week_no}").random
        profile = self.profile
        skip, listed = profile.skip_probability, _LISTED_FRACTION
        bias, slope, top = profile.venue_bias, profile.venue_slope, profile.max_venues
        space, size = self.space, self.size
        high = 0
        for k in range(1, size + 1):
            low, high = high, k * space // size
            u = uniform()
            liquidity = 0.5513 * log((u + 1e-12) / (1.0 - u))  # as _normalish, inlined
            liquidity = -4.0 if liquidity < -4.0 else 4.0 if liquidity > 4.0 else liquidity
            rank = low + int(uniform() * (high - low))
            bits = randbits(72)
            skipped = weekly() < skip
            spread = weekly()
            cycle = 150 + (bits & 0x7FF) % 1500
            if (week_no + (bits >> 11 & 0x7FF)) % cycle >= cycle * listed:
                yield rank, liquidity, bits, 0, skipped
                continue
            share = 1.0 / (1.0 + exp(-bias - slope * liquidity))
            count = round(top * share + spread * 2.0 - 1.0)
            yield rank, liquidity, bits, top if count > top else count if count > 1 else 1, skipped

    def symbol(self, rank: int, previous_rank: int, bits: int) -> str:
        """A slot's symbol: its base, a prefix no earlier slot shares, or base + suffix."""
        length = self.base_length
        base = _letters(rank, length)
        wanted = 1 + bisect(self.profile.length_cdf, (bits >> 22 & 0x3FF) / 1024)
        for shorter in range(wanted, length):
            # A prefix is free when the previous slot's base does not start with it.
            group = 26 ** (length - shorter)
            if previous_rank < 0 or previous_rank // group != rank // group:
                return base[:shorter]
        suffixes = self.profile.suffixes
        if wanted > self.base_length and suffixes:
            return base + suffixes[(bits >> 32 & 0xFF) % len(suffixes)]
        return base

    def issue_name(self, symbol: str, bits: int) -> str:
        """A plausible issue name; some hold commas, quotes, '$' or parentheses."""
        form = _FORMS[(bits >> 51 & 0xF) % len(_FORMS)]
        stem = _STEMS[(bits >> 40 & 0x3F) % len(_STEMS)]
        sector = _SECTORS[(bits >> 46 & 0x1F) % len(_SECTORS)]
        company = f"{stem} {sector}{', ' if form == 'Inc.' else ' '}{form}"
        country = _COUNTRIES[(bits >> 55 & 0xF) % len(_COUNTRIES)]
        style = bits >> 59 & 0x1F
        five = len(symbol) == 5
        if self.tier == "OTC":
            if five and symbol[-1] == "Y":
                if style & 1:
                    return f"{company} Unsponsored ADR ({country})"
                return f"{company} Sponsored American Depositary Receipt ({country})"
            if five and symbol[-1] == "F":
                if style & 1:
                    return f"{company} COM NEW ({country})".upper()
                return f"{company} Ordinary Shares"
            return f"{company} Common Stock"
        if self.tier == "T1" and style < 5:
            issuer = _ETF_ISSUERS[bits >> 40 & 0x3]
            return f"{issuer} {_ETF_THEMES[bits >> 46 & 0x7]} ETF"
        if five:
            return f"{company} {_SUFFIX_KINDS.get(symbol[-1], 'Common Stock')}"
        if style == 31:
            return (
                f'{company} 7.25% Series "{symbol[0]}" Cumulative Preferred Stock'
                " ($25.00 liquidation preference)"
            )
        return f"{company} {'Class A ' if style < 8 else ''}Common Stock"


def week_monday(day: date) -> date:
    """The Monday that starts the reporting week containing ``day``."""
    return day - timedelta(days=day.weekday())


def generate_week(
    path_or_stream: str | os.PathLike[str] | IO[bytes] | IO[str],
    *,
    tier: str,
    week: date,
    rows: int,
    seed: int,
    ats: bool,
    malformed_ratio: float = 0.0,
    symbol_universe: SymbolUniverse | None = None,
) -> GeneratedWeek:
    """Write one week's file of exactly ``rows`` data rows and report what it holds.

    ``ats`` says which summary: ATS volume (venues are ATSs) or non-ATS OTC volume
    (venues are member firms). ``week`` may be any day of the reporting week; the file
    describes its Monday. The same arguments always give the same bytes.
    ``malformed_ratio`` replaces about that share of rows with malformed ones (see
    ``MALFORMED_KINDS``); every other row stays identical to the clean file for the same
    seed. A path is written atomically.
    """
    code = parse_tier(tier)
    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    if not 0.0 <= malformed_ratio <= 1.0:
        raise ValueError(f"malformed_ratio must be between 0 and 1, got {malformed_ratio}")
    universe = symbol_universe or SymbolUniverse.for_rows(code, rows, seed, ats=ats)
    if universe.tier != code:
        raise ValueError(f"symbol universe is for tier {universe.tier}, not {code}")
    if universe.ats != ats:
        raise ValueError(
            f"symbol universe is for the {_KIND[universe.ats]} summary, not the {_KIND[ats]}"
        )
    monday = week_monday(week)
    is_path = isinstance(path_or_stream, str | os.PathLike)
    result = GeneratedWeek(
        path=Path(path_or_stream) if is_path else None,  # type: ignore[arg-type]
        tier=code,
        ats=ats,
        week=monday,
        last_update_date=monday + timedelta(days=_PROFILES[code].publication_lag_days),
        rows=rows,
    )
    week_no = (monday - _EPOCH_MONDAY).days // 7
    plan = _plan(universe, week_no, rows)
    with _open_writer(path_or_stream) as write:
        write("|".join(HEADER) + "\n")
        _RowWriter(universe, week_no, seed, malformed_ratio, result).run(write, plan)
    return result


def generate_weeks(
    out_dir: str | os.PathLike[str],
    *,
    tier: str,
    start_week: date,
    weeks: int,
    rows: int,
    seed: int,
    ats: bool,
    malformed_ratio: float = 0.0,
) -> list[Path]:
    """Write ``weeks`` consecutive weekly files of one summary that share one symbol
    universe.

    Files are named by :func:`week_file_name` (``finra_t1_ats_20251215.psv``,
    ``finra_otc_non_ats_20251215.psv``): nothing in a file's columns says which summary
    it is, so its name does. Sharing the universe is what makes symbols persist, appear
    and disappear across weeks as in FINRA data.
    """
    code = parse_tier(tier)
    directory = Path(out_dir)
    directory.mkdir(parents=True, exist_ok=True)
    universe = SymbolUniverse.for_rows(code, rows, seed, ats=ats)
    paths = []
    for offset in range(weeks):
        monday = week_monday(start_week) + timedelta(weeks=offset)
        path = directory / week_file_name(code, monday, ats=ats)
        generate_week(
            path,
            tier=code,
            week=monday,
            rows=rows,
            seed=seed,
            ats=ats,
            malformed_ratio=malformed_ratio,
            symbol_universe=universe,
        )
        paths.append(path)
    return paths


@dataclass(frozen=True, slots=True)
class _Plan:
    """How the week's wanted venue rows are scaled to exactly ``rows``.

    ``include_skipped`` brings in symbols that sat the week out; ``fill`` (only when
    even that is too few) tops symbols up towards the venue limit instead of thinning.
    """

    rows: int
    wanted: int
    headroom: int
    include_skipped: bool
    fill: bool


def _plan(universe: SymbolUniverse, week_no: int, rows: int) -> _Plan:
    """First pass: total what the week's symbols want and choose how to scale it."""
    active = everyone = headroom = 0
    top = universe.profile.max_venues
    for _rank, _liquidity, _bits, count, skipped in universe.week_slots(week_no):
        if count:
            everyone += count
            headroom += top - count
            if not skipped:
                active += count
    if active >= rows:
        return _Plan(rows, active, 0, include_skipped=False, fill=False)
    if everyone >= rows:
        return _Plan(rows, everyone, 0, include_skipped=True, fill=False)
    if everyone + headroom < rows:
        raise ValueError(
            f"symbol universe of {universe.size} slots holds at most {everyone + headroom} "
            f"rows this week, fewer than the {rows} requested"
        )
    return _Plan(rows, everyone, headroom, include_skipped=True, fill=True)


def _allocate(
    universe: SymbolUniverse, week_no: int, plan: _Plan
) -> Iterator[tuple[int, int, float, int, int]]:
    """Second pass: yield ``(previous_rank, rank, liquidity, bits, rows)`` per trading
    symbol, the rows summing to exactly ``plan.rows``.

    Cumulative rounding hands out rows in proportion to what each symbol wanted (or,
    when filling, to its room for more venues), so no symbol exceeds the venue limit.
    """
    rows, wanted, headroom = plan.rows, plan.wanted, plan.headroom
    fill, include_skipped = plan.fill, plan.include_skipped
    top = universe.profile.max_venues
    previous_rank = -1
    seen = given = 0
    for rank, liquidity, bits, count, skipped in universe.week_slots(week_no):
        if count and (include_skipped or not skipped):
            if fill:
                seen += top - count
                target = (rows - wanted) * seen // headroom
                count += target - given
            else:
                seen += count
                target = rows * seen // wanted
                count = target - given
            given = target
            if count:
                yield previous_rank, rank, liquidity, bits, count
        previous_rank = rank


class _RowWriter:
    """Formats the rows of one week; all per-row state lives in locals of ``run``."""

    def __init__(
        self,
        universe: SymbolUniverse,
        week_no: int,
        seed: int,
        malformed_ratio: float,
        result: GeneratedWeek,
    ) -> None:
        self.universe = universe
        self.week_no = week_no
        self.result = result
        self.faults = _FaultInjector(f"{universe.tier}:{seed}:{week_no}", malformed_ratio, result)
        self.values = Random(f"otc-values:{universe.tier}:{seed}:{week_no}")

    def run(self, write: _Write, plan: _Plan) -> None:
        universe, result, faults = self.universe, self.result, self.faults
        profile = universe.profile
        description = tier_description_for(universe.tier)
        updated = result.last_update_date.isoformat()
        # FINRA's venue name starts with the MPID, so MPID order is FINRA's row order.
        popularity = {
            mpid: 1.0 / (rank + 1) ** profile.zipf_exponent
            for rank, (mpid, _name) in enumerate(profile.venues)
        }
        venues = sorted(profile.venues)
        weights = [popularity[mpid] for mpid, _name in venues]
        parts = [f"{mpid} {name}|{mpid}|" for mpid, name in venues]
        cumulative = list(accumulate(weights))
        total_weight = cumulative[-1]
        exponents = [1.0 / weight for weight in weights]
        n_venues = len(venues)
        median, sigma = profile.log_median_volume, profile.volume_sigma
        uniform = self.values.random
        inject = faults.ratio > 0.0
        symbol_of, name_of = universe.symbol, universe.issue_name
        chunk: list[str] = []
        append = chunk.append
        symbols = clean_rows = clean_volume = clean_trades = 0
        for previous_rank, rank, liquidity, bits, count in _allocate(universe, self.week_no, plan):
            symbol = symbol_of(rank, previous_rank, bits)
            name = name_of(symbol, bits)
            prefix = f"{description}|{symbol}|{name}|"
            symbols += 1
            picked: tuple[int, ...] | list[int]
            if count == 1:
                picked = (bisect(cumulative, uniform() * total_weight),)
            elif count * 3 <= n_venues:
                chosen: set[int] = set()
                while len(chosen) < count:
                    chosen.add(bisect(cumulative, uniform() * total_weight))
                picked = sorted(chosen)
            else:  # weighted sampling without replacement by random keys
                keys = sorted([(uniform() ** exponents[i], i) for i in range(n_venues)])
                picked = sorted([i for _key, i in keys[n_venues - count :]])
            u = uniform()
            total = exp(median + sigma * liquidity + 0.22 * log((u + 1e-12) / (1.0 - u)))
            trade_size = _TRADE_SIZES[bits >> 64 & 0x3F]
            shares: tuple[float, ...] | list[float]
            if count == 1:
                shares = (total,)
            else:
                shares = [weights[i] * (0.3 + uniform()) for i in picked]
                scale = total / sum(shares)
                shares = [share * scale for share in shares]
            for i, share in zip(picked, shares, strict=True):
                volume = int(share) or 1
                # Rounding up keeps the average trade within 50-2,000 shares (and <= volume).
                trades = int(volume / (trade_size * (0.75 + 0.5 * uniform()))) + 1
                if inject and faults.strike():
                    append(faults.corrupt(description, symbol, name, venues[i], volume, trades))
                    continue
                append(f"{prefix}{parts[i]}{volume}|{trades}|{updated}\n")
                if inject:
                    faults.remember(prefix, parts[i])
                clean_rows += 1
                clean_volume += volume
                clean_trades += trades
            if len(chunk) >= _CHUNK_ROWS:
                write("".join(chunk))
                chunk.clear()
        if chunk:
            write("".join(chunk))
        result.symbols += symbols
        result.clean_rows += clean_rows
        result.clean_share_volume += clean_volume
        result.clean_trade_count += clean_trades


class _FaultInjector:
    """Replaces rows with malformed ones, from its own random stream.

    A separate stream keeps every untouched row identical to the clean file, so a
    test can compare a malformed file with its clean twin.
    """

    def __init__(self, key: str, ratio: float, result: GeneratedWeek) -> None:
        self.ratio = ratio
        self.rng = Random(f"otc-faults:{key}")
        self.result = result
        self.updated = result.last_update_date.isoformat()
        self.last_clean: tuple[str, str] | None = None

    def strike(self) -> bool:
        return self.rng.random() < self.ratio

    def remember(self, prefix: str, venue_part: str) -> None:
        self.last_clean = (prefix, venue_part)

    def corrupt(
        self,
        description: str,
        symbol: str,
        name: str,
        venue: tuple[str, str],
        volume: int,
        trades: int,
    ) -> str:
        """Return a malformed line in place of the row described by the arguments."""
        kind = MALFORMED_KINDS[int(self.rng.random() * len(MALFORMED_KINDS))]
        if kind == "duplicate" and self.last_clean is None:
            kind = "non_numeric_volume"
        self.result.malformed[kind] += 1
        mpid, venue_name = venue
        fields = [description, symbol, name, f"{mpid} {venue_name}", mpid, str(volume), str(trades)]
        if kind == "duplicate":
            prefix, venue_part = self.last_clean  # type: ignore[misc]
            self.result.duplicate_share_volume += volume
            return f"{prefix}{venue_part}{volume}|{trades}|{self.updated}\n"
        if kind == "non_numeric_volume":
            grouped = f"{volume:,}" if volume >= 1000 else f"{volume}x"
            fields[5] = self.rng.choice((grouped, "N/A", f"{volume}.5", "1e6"))
        elif kind == "negative_trade_count":
            fields[6] = f"-{trades}"
        elif kind == "empty_symbol":
            fields[1] = self.rng.choice(("", "  "))
        elif kind == "empty_mpid":
            fields[4] = ""
        elif self.rng.random() < 0.5:  # wrong_field_count: a stray pipe in the name
            fields[2] = name.replace(" ", " | ", 1) if " " in name else f"{name}|"
        else:  # wrong_field_count: the last column is missing
            return "|".join(fields) + "\n"
        return "|".join(fields) + f"|{self.updated}\n"


@contextmanager
def _open_writer(target: str | os.PathLike[str] | IO[bytes] | IO[str]) -> Iterator[_Write]:
    """Yield a ``write(str)`` for a path (written atomically), binary or text stream."""
    if isinstance(target, io.TextIOBase):
        yield target.write
        return
    if not isinstance(target, str | os.PathLike):
        yield lambda text: target.write(text.encode("utf-8"))  # type: ignore[arg-type]
        return
    path = Path(target)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as handle:
            yield lambda text: handle.write(text.encode("utf-8"))
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


@cache
def _expected_venues(profile: _TierProfile) -> float:
    """Mean venue rows per trading symbol, integrated over the model's random inputs."""
    steps = 200
    total = 0.0
    top = profile.max_venues
    for i in range(steps):
        share = 1.0 / (
            1.0 + exp(-profile.venue_bias - profile.venue_slope * _normalish((i + 0.5) / steps))
        )
        for j in range(10):
            total += min(top, max(1, round(top * share + (j + 0.5) / 10 * 2.0 - 1.0)))
    return total / (steps * 10)


def _normalish(u: float) -> float:
    """Map a uniform draw to a unit-variance logistic one: normal-like, a little fatter in
    the tails, and several times cheaper than ``random.gauss``."""
    return max(-4.0, min(4.0, 0.5513 * log((u + 1e-12) / (1.0 - u))))


_PAIRS = [a + b for a in _LETTERS for b in _LETTERS]
#: Typical trade sizes per symbol, skewed towards small trades; with the per-row noise
#: of +/-25% every row's average trade stays within 50-2,000 shares.
_TRADE_SIZES = [70.0 * (1600.0 / 70.0) ** ((i / 63) ** 1.5) for i in range(64)]


def _letters(rank: int, length: int) -> str:
    """The ``rank``-th string of ``length`` (4 or 5) letters in alphabetical order."""
    high, low = divmod(rank, 676)
    if length == 4:
        return _PAIRS[high] + _PAIRS[low]
    top, high = divmod(high, 676)
    return _LETTERS[top] + _PAIRS[high] + _PAIRS[low]
