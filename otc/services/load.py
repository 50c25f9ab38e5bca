"""Parse a capture's lines straight into its staged normalized rows and its rejects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection

from otc.models import Capture, Issue, Participant, Reject, RejectKind
from otc.parser import WeeklyFileParser
from otc.services import partitions
from otc.services.sql import execute, fetch_all, vendor

__all__ = ["LoadResult", "load_capture"]

#: Rows parsed before their new symbols and venues are added to the dimensions and the
#: rows are written (no other statement may run while a ``COPY`` is open).
_CHUNK_ROWS = 50_000
#: Dimension keys per lookup statement.
_LOOKUP_BATCH = 400
#: One lock for adding dimension rows, so concurrent ingests never deadlock on them.
_DIMENSION_LOCK = 0x4F54_4344  # "OTCD"


@dataclass
class LoadResult:
    """What one pass over a capture's lines found."""

    rows_read: int = 0
    loaded: int = 0
    invalid: int = 0
    duplicates: int = 0
    blank_lines: int = 0
    last_update_dates: set[date] = field(default_factory=set)


class _Lock:
    """The transaction's hold on the dimension lock (PostgreSQL), taken once."""

    def __init__(self) -> None:
        self.held = False

    def take(self) -> None:
        if vendor() == "postgresql" and not self.held:
            fetch_all("SELECT pg_advisory_xact_lock(%s)", [_DIMENSION_LOCK])
        self.held = True


class _Dimension:
    """Ids of (key, name) pairs: the whole dimension read once (a few hundred thousand
    short rows at most), new pairs added in one statement per chunk."""

    def __init__(self, model: type[Issue] | type[Participant], key: str, lock: _Lock) -> None:
        self.table = model._meta.db_table
        self.key = key
        self.lock = lock
        self.ids: dict[tuple[str, str], int] = {}
        self.loaded = False
        self.added = 0

    def resolve(self, pairs: set[tuple[str, str]]) -> None:
        if not self.loaded:
            self.ids = {(k, n): i for i, k, n in fetch_all(self._select())}
            self.loaded = True
        new = sorted(pair for pair in pairs if pair not in self.ids)
        if not new:
            return
        self.lock.take()
        self._add(new)
        missing = [pair for pair in new if pair not in self.ids]
        if missing:  # added by a concurrent ingest since the dimension was read
            for start in range(0, len(missing), _LOOKUP_BATCH):
                batch = missing[start : start + _LOOKUP_BATCH]
                keys = ", ".join(["(%s, %s)"] * len(batch))
                where = f" WHERE ({self.key}, name) IN ({keys})"
                found = fetch_all(self._select() + where, [v for pair in batch for v in pair])
                self.ids.update(((k, n), i) for i, k, n in found)
        self.added += len(new)

    def _select(self) -> str:
        return f"SELECT id, {self.key}, name FROM {self.table}"

    def _add(self, new: list[tuple[str, str]]) -> None:
        returning = f" ON CONFLICT ({self.key}, name) DO NOTHING RETURNING id, {self.key}, name"
        if vendor() == "postgresql":
            # One statement with two array parameters, bound by the server.
            sql = (
                f"INSERT INTO {self.table} ({self.key}, name)"
                " SELECT * FROM unnest(%s::text[], %s::text[])"
            )
            with connection.connection.cursor() as cursor:
                cursor.execute(sql + returning, ([k for k, _ in new], [n for _, n in new]))
                self.ids.update(((k, n), i) for i, k, n in cursor.fetchall())
            return
        with connection.cursor() as cursor:
            for start in range(0, len(new), _LOOKUP_BATCH):
                batch = new[start : start + _LOOKUP_BATCH]
                values = ", ".join(["(%s, %s)"] * len(batch))
                cursor.execute(
                    f"INSERT INTO {self.table} ({self.key}, name) VALUES {values}{returning}",
                    [v for pair in batch for v in pair],
                )
                self.ids.update(((k, n), i) for i, k, n in cursor.fetchall())

    def analyze_if_grown(self) -> None:
        """Fresh planner statistics after a load added many keys (the compute that
        follows joins them to a million rows)."""
        if vendor() == "postgresql" and self.added > max(1_000, len(self.ids) // 10):
            execute(f"ANALYZE {self.table}")


def load_capture(capture: Capture, lines: Iterable[bytes]) -> tuple[LoadResult, WeeklyFileParser]:
    """Parse ``lines`` (header first) into a new staged table of the capture's
    normalized rows, and its rejects: ``invalid`` rows the parser refused and
    ``duplicate`` rows repeating an earlier line's symbol+MPID (the first line wins).

    Runs in the caller's transaction; ``FileFormatError`` (or the archive's
    ``ArchiveCorrupted``, raised after the last line) leaves the caller to roll back.
    """
    parser = WeeklyFileParser(lines, expected_tier=capture.tier)
    table = partitions.create_staged(capture.pk)
    result = LoadResult()
    lock = _Lock()
    issues, venues = _Dimension(Issue, "symbol", lock), _Dimension(Participant, "mpid", lock)
    issues.resolve(set())
    venues.resolve(set())
    issue_ids, venue_ids = issues.ids, venues.ids
    symbols: dict[str, int] = {}
    mpids: dict[str, int] = {}
    first_line: dict[int, int] = {}
    rejects: list[tuple[int, str, str, str]] = []
    chunk: list[tuple[int, int, int, tuple[str, str], tuple[str, str]]] = []
    new_issues: set[tuple[str, str]] = set()
    new_venues: set[tuple[str, str]] = set()
    writer = partitions.RowWriter(table, capture.pk, capture.week)

    def flush() -> None:
        if new_issues:
            issues.resolve(new_issues)
            new_issues.clear()
        if new_venues:
            venues.resolve(new_venues)
            new_venues.clear()
        writer.write(chunk, issue_ids, venue_ids)
        result.loaded += len(chunk)
        chunk.clear()

    # The hot loop: locals only, one dictionary probe per key.
    get_symbol, get_mpid, first_of = symbols.get, mpids.get, first_line.setdefault
    append = chunk.append
    invalid, duplicate = RejectKind.INVALID, RejectKind.DUPLICATE
    for row in parser:
        line_no, raw, _, symbol, issue_name, venue_name, mpid, shares, trades, _, reason = row
        if reason is not None:
            rejects.append((line_no, raw, reason, invalid))
            continue
        s = get_symbol(symbol)
        if s is None:
            s = symbols[symbol] = len(symbols)
        m = get_mpid(mpid)
        if m is None:
            m = mpids[mpid] = len(mpids)
        first = first_of(s << 32 | m, line_no)
        if first != line_no:
            reason = f"duplicate symbol+MPID: {symbol}/{mpid} repeats line {first}"
            rejects.append((line_no, raw, reason, duplicate))
            continue
        issue, venue = (symbol, issue_name), (mpid, venue_name)
        if issue not in issue_ids:
            new_issues.add(issue)
        if venue not in venue_ids:
            new_venues.add(venue)
        append((line_no, shares, trades, issue, venue))
        if len(chunk) >= _CHUNK_ROWS:
            flush()
    if chunk:
        flush()
    issues.analyze_if_grown()
    venues.analyze_if_grown()
    _store_rejects(capture.pk, rejects)
    result.rows_read = parser.rows_read
    result.blank_lines = parser.blank_lines
    result.last_update_dates = set(parser.last_update_dates)
    result.invalid = sum(1 for r in rejects if r[3] == RejectKind.INVALID)
    result.duplicates = len(rejects) - result.invalid
    return result, parser


def _store_rejects(capture_id: int, rejects: list[tuple[int, str, str, str]]) -> None:
    if not rejects:
        return
    sql = (
        f"INSERT INTO {Reject._meta.db_table} (capture_id, line_no, raw, reason, kind)"
        " VALUES (%s, %s, %s, %s, %s)"
    )
    params: list[Any] = [(capture_id, *reject) for reject in rejects]
    with connection.cursor() as cursor:
        for start in range(0, len(params), 5_000):
            cursor.executemany(sql, params[start : start + 5_000])
