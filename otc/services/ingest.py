"""Ingest: FINRA weekly bytes → a Capture with its raw rows and rejects, atomically."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from django.db import connection, transaction

from executions.fencing import fence
from otc.inbox import open_regular
from otc.models import (
    Capture,
    CaptureState,
    RawRow,
    Reject,
    RejectKind,
    capture_key_range,
    line_key,
)
from otc.parser import ParsedRow, WeeklyFileParser, parse_tier
from otc.services.sql import execute, vendor
from otc.weeks import reporting_week
from spine.time import utc_now

if TYPE_CHECKING:
    from executions.models import Execution

__all__ = [
    "IngestResult",
    "file_checksum",
    "ingest_file",
    "ingest_handle",
    "ingest_lines",
    "resolve_key",
]

_RAW_COLUMNS = (
    "id",
    "capture_id",
    "line_no",
    "raw",
    "tier_description",
    "symbol",
    "issue_name",
    "venue_name",
    "mpid",
    "share_quantity",
    "trade_count",
    "last_update_date",
    "reject_reason",
)
_RAW_TYPES = ("int8", "int8", "int4", *["text"] * 6, "int8", "int8", "date", "text")
#: Rows per ``executemany`` on SQLite: large enough to amortise, small enough to stay flat.
_BATCH_ROWS = 5_000
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did. ``status`` is ``created`` (a new staged capture),
    ``unchanged`` (the current capture holds these bytes: a no-op) or ``resumed`` (a
    newer capture that is not current yet holds them; ``state`` says which)."""

    status: Literal["created", "unchanged", "resumed"]
    capture_id: int
    tier: str
    week: date
    ats: bool
    checksum: str
    rows: int
    rejects: int
    warnings: list[str] = field(default_factory=list)
    state: str = CaptureState.STAGED
    current_capture_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as pipelines return it."""
        data = asdict(self)
        data["week"] = self.week.isoformat()
        return data


class _Unchanged(Exception):
    def __init__(self, capture: Capture, current: Capture | None) -> None:
        self.capture = capture
        self.current = current


def resolve_key(tier: str, week: date | str) -> tuple[str, date]:
    """Canonical tier code and the Monday of ``week`` (any day of it).

    Raises ``ValueError`` for an unknown tier, or a week before FINRA's data starts
    or after the current week (see :func:`otc.weeks.reporting_week`).
    """
    return parse_tier(tier), reporting_week(week)


def file_checksum(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return _handle_checksum(handle)


def ingest_file(
    path: str | Path,
    *,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
) -> IngestResult:
    """Ingest a downloaded FINRA weekly file the caller may read (a shell's own file).

    Pipelines read from the inbox instead (:func:`otc.inbox.open_inbox_file`, then
    :func:`ingest_handle`). Only a regular file is read: a directory, FIFO or device
    is refused by name.
    """
    with open_regular(path) as handle:
        return ingest_handle(
            handle, source=str(path), tier=tier, week=week, ats=ats, execution=execution
        )


def ingest_handle(
    handle: BinaryIO,
    *,
    source: str,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
) -> IngestResult:
    """Ingest an open binary FINRA file (seekable), recorded with ``source``.

    A cheap checksum pass first: a file identical to the current capture is a no-op
    without parsing. The streamed checksum is still the one that counts, in case the
    file changes between the two reads.
    """
    code, monday = resolve_key(tier, week)
    current = Capture.objects.current().of_key(code, monday, ats).first()
    candidates = _holders(code, monday, ats, current)
    if candidates:
        checksum = _handle_checksum(handle)
        same = next((c for c in candidates if c.checksum == checksum), None)
        if same is not None:
            return _unchanged(same, current)
        handle.seek(0)
    return ingest_lines(handle, source=source, tier=code, week=monday, ats=ats, execution=execution)


def _handle_checksum(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def ingest_lines(
    lines: Iterable[bytes],
    *,
    source: str,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
) -> IngestResult:
    """Ingest download-format ``bytes`` lines (header first) as a capture.

    Identical content to the current capture of (tier, week, ats) is a no-op that says
    so; different content becomes a new staged capture, which supersedes the current
    one (kept queryable) only once its compute passes the quality gate. Raises
    ``FileFormatError`` (nothing written) for file-level problems; row-level problems
    become ``Reject`` rows.
    """
    code, monday = resolve_key(tier, week)
    digest = hashlib.sha256()
    try:
        with transaction.atomic():
            current = (
                Capture.objects.select_for_update().current().of_key(code, monday, ats).first()
            )
            capture = Capture.objects.create(
                tier=code,
                week=monday,
                ats=ats,
                source=source,
                ingested_at=utc_now(),
                execution=execution,
            )
            parser = WeeklyFileParser(_hashing(lines, digest), expected_tier=code)
            _store_raw_rows(capture.pk, parser)
            checksum = digest.hexdigest()
            same = _same_bytes(code, monday, ats, checksum, current)
            if same is not None:
                raise _Unchanged(same, current)
            rejects = _store_rejects(capture.pk) if parser.rejects else 0
            _finish(capture, parser, checksum, rejects)
            fence()
    except _Unchanged as unchanged:
        return _unchanged(unchanged.capture, unchanged.current)
    return IngestResult(
        status="created",
        capture_id=capture.pk,
        tier=code,
        week=monday,
        ats=ats,
        checksum=capture.checksum,
        rows=capture.row_count,
        rejects=capture.reject_count,
        warnings=list(capture.warnings),
        current_capture_id=current.pk if current is not None else None,
    )


def _holders(tier: str, week: date, ats: bool, current: Capture | None) -> list[Capture]:
    """The captures whose bytes a re-ingest would repeat: the current one, and the
    newest capture ingested after it that has not become current."""
    pending = Capture.objects.pending().complete().of_key(tier, week, ats)
    if current is not None:
        pending = pending.filter(pk__gt=current.pk)
    newest = pending.order_by("-pk").first()
    return [c for c in (current, newest) if c is not None]


def _same_bytes(
    tier: str, week: date, ats: bool, checksum: str, current: Capture | None
) -> Capture | None:
    """The capture that already holds these bytes, if any (see :func:`_holders`)."""
    holders = _holders(tier, week, ats, current)
    return next((c for c in holders if c.checksum == checksum), None)


def _unchanged(capture: Capture, current: Capture | None) -> IngestResult:
    return IngestResult(
        status="unchanged" if capture.is_current else "resumed",
        capture_id=capture.pk,
        tier=capture.tier,
        week=capture.week,
        ats=capture.ats,
        checksum=capture.checksum,
        rows=capture.row_count,
        rejects=capture.reject_count,
        warnings=list(capture.warnings),
        state=capture.state,
        current_capture_id=current.pk if current is not None else None,
    )


def _hashing(lines: Iterable[bytes], digest: Any) -> Iterator[bytes]:
    update = digest.update
    for line in lines:
        update(line)
        yield line


def _store_raw_rows(capture_id: int, rows: Iterable[ParsedRow]) -> None:
    """Stream every parsed data row into ``RawRow``; the dialect picks the bulk path."""
    if vendor() == "postgresql":
        _copy_rows(capture_id, rows)
    else:
        _insert_rows(capture_id, rows)


def _copy_rows(capture_id: int, rows: Iterable[ParsedRow]) -> None:
    """PostgreSQL: psycopg 3 binary ``COPY`` on Django's own connection, so the rows
    are part of Django's transaction. Binary saves the server parsing text numbers."""
    columns = ", ".join(_RAW_COLUMNS)
    sql = f"COPY {RawRow._meta.db_table} ({columns}) FROM STDIN WITH (FORMAT BINARY)"
    base = line_key(capture_id, 0)
    with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
        copy.set_types(_RAW_TYPES)
        write_row = copy.write_row
        for row in rows:
            write_row((base + row[0], capture_id, *row))


def _insert_rows(capture_id: int, rows: Iterable[ParsedRow]) -> None:
    """SQLite: ``executemany`` in fixed-size batches."""
    placeholders = ", ".join(["%s"] * len(_RAW_COLUMNS))
    sql = f"INSERT INTO {RawRow._meta.db_table} ({', '.join(_RAW_COLUMNS)}) VALUES ({placeholders})"
    base = line_key(capture_id, 0)
    batch: list[tuple[Any, ...]] = []
    with connection.cursor() as cursor:
        for row in rows:
            batch.append((base + row[0], capture_id, *row))
            if len(batch) >= _BATCH_ROWS:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


def _store_rejects(capture_id: int) -> int:
    """Copy the parser's rejects (reason and raw line) into ``Reject`` in one statement.

    Duplicate symbol+MPID rows are valid rows on their own; normalization finds them.
    """
    raw, reject = RawRow._meta.db_table, Reject._meta.db_table
    lowest, bound = capture_key_range(capture_id)
    return execute(
        f"""
        INSERT INTO {reject} (capture_id, line_no, raw, reason, kind)
        SELECT capture_id, line_no, raw, reject_reason, %(kind)s
          FROM {raw}
         WHERE id >= %(lowest)s AND id < %(bound)s AND reject_reason IS NOT NULL
        """,
        {"lowest": lowest, "bound": bound, "kind": RejectKind.INVALID},
    )


def _finish(capture: Capture, parser: WeeklyFileParser, checksum: str, rejects: int) -> None:
    """Record counts and warnings; the capture stays staged until compute promotes it."""
    dates = sorted(parser.last_update_dates)
    capture.checksum = checksum
    capture.row_count = parser.rows_read
    capture.reject_count = rejects
    capture.last_update_dates = [day.isoformat() for day in dates]
    capture.warnings = _warnings(capture.week, parser, dates)
    capture.ingested_at = utc_now()
    capture.save(
        update_fields=[
            "checksum",
            "row_count",
            "reject_count",
            "last_update_dates",
            "warnings",
            "ingested_at",
        ]
    )


def _warnings(week: date, parser: WeeklyFileParser, dates: list[date]) -> list[str]:
    warnings = []
    if len(dates) > 1:
        listed = ", ".join(day.isoformat() for day in dates)
        warnings.append(f"mixed lastUpdateDate values in one file: {listed}")
    if dates and dates[0] < week:
        warnings.append(
            f"lastUpdateDate {dates[0].isoformat()} is before the reporting week "
            f"{week.isoformat()}: check the week given for this capture"
        )
    if parser.blank_lines:
        warnings.append(f"{parser.blank_lines} blank line(s) skipped")
    return warnings
