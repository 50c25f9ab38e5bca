"""Parse a capture's lines straight into its staged normalized rows and its rejects."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from django.db import connection

from otc.models import Capture, Issue, Participant, Reject, RejectKind, line_key
from otc.parser import ParsedRow, WeeklyFileParser
from otc.services import partitions
from otc.services.sql import fetch_all, vendor

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
    """Ids of (key, name) pairs, looked up and added in batches."""

    def __init__(self, model: type[Issue] | type[Participant], key: str, lock: _Lock) -> None:
        self.table = model._meta.db_table
        self.key = key
        self.lock = lock
        self.ids: dict[tuple[str, str], int] = {}

    def resolve(self, pairs: set[tuple[str, str]]) -> None:
        missing = [pair for pair in pairs if pair not in self.ids]
        if not missing:
            return
        self._lookup(missing)
        new = sorted(pair for pair in missing if pair not in self.ids)
        if not new:
            return
        self.lock.take()
        with connection.cursor() as cursor:
            for start in range(0, len(new), _LOOKUP_BATCH):
                batch = new[start : start + _LOOKUP_BATCH]
                values = ", ".join(["(%s, %s)"] * len(batch))
                cursor.execute(
                    f"INSERT INTO {self.table} ({self.key}, name) VALUES {values}"
                    f" ON CONFLICT ({self.key}, name) DO NOTHING",
                    [value for pair in batch for value in pair],
                )
        self._lookup(new)

    def _lookup(self, pairs: list[tuple[str, str]]) -> None:
        for start in range(0, len(pairs), _LOOKUP_BATCH):
            batch = pairs[start : start + _LOOKUP_BATCH]
            keys = ", ".join(["(%s, %s)"] * len(batch))
            sql = f"SELECT id, {self.key}, name FROM {self.table} WHERE ({self.key}, name) IN"
            for ident, key, name in fetch_all(
                f"{sql} ({keys})", [value for pair in batch for value in pair]
            ):
                self.ids[(key, name)] = ident


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
    symbols: dict[str, int] = {}
    mpids: dict[str, int] = {}
    first_line: dict[int, int] = {}
    rejects: list[tuple[int, str, str, str]] = []
    chunk: list[ParsedRow] = []
    capture_id, week = capture.pk, capture.week
    base = line_key(capture_id, 0)

    def flush() -> None:
        issues.resolve({(row.symbol, row.issue_name) for row in chunk})
        venues.resolve({(row.mpid, row.venue_name) for row in chunk})
        issue_ids, venue_ids = issues.ids, venues.ids
        partitions.write_rows(
            table,
            (
                (
                    base + row.line_no,
                    capture_id,
                    row.share_quantity,
                    row.trade_count,
                    week,
                    row.line_no,
                    issue_ids[(row.symbol, row.issue_name)],
                    venue_ids[(row.mpid, row.venue_name)],
                )
                for row in chunk
            ),
        )
        result.loaded += len(chunk)
        chunk.clear()

    for row in parser:
        if row.reject_reason is not None:
            rejects.append((row.line_no, row.raw, row.reject_reason, RejectKind.INVALID))
            continue
        key = symbols.setdefault(row.symbol, len(symbols)) << 32 | mpids.setdefault(
            row.mpid, len(mpids)
        )
        first = first_line.setdefault(key, row.line_no)
        if first != row.line_no:
            reason = f"duplicate symbol+MPID: {row.symbol}/{row.mpid} repeats line {first}"
            rejects.append((row.line_no, row.raw, reason, RejectKind.DUPLICATE))
            continue
        chunk.append(row)
        if len(chunk) >= _CHUNK_ROWS:
            flush()
    if chunk:
        flush()
    _store_rejects(capture_id, rejects)
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
