"""Normalized rows per capture: a staged standalone table, published by attaching it as
a partition of ``otc_venuevolume`` (PostgreSQL) or by moving its rows (SQLite)."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection

from otc.services.sql import execute, fetch_all, vendor

__all__ = [
    "COLUMNS",
    "PARENT",
    "Partition",
    "PartitionsUnsupported",
    "RowWriter",
    "capture_rows_sql",
    "capture_tables",
    "create_parent",
    "create_staged",
    "detach_before",
    "drop_rows",
    "list_partitions",
    "publish",
    "staged_exists",
    "staged_table",
    "write_rows",
]

PARENT = "otc_venuevolume"
#: Column order of the table on PostgreSQL: the 8-byte columns first, so no padding.
COLUMNS = (
    "id",
    "capture_id",
    "share_volume",
    "trade_count",
    "week",
    "line_no",
    "issue_id",
    "participant_id",
)
_PG_TYPES = ("int8", "int8", "int8", "int8", "date", "int4", "int4", "int4")
_PG_DDL = ("bigint", "bigint", "bigint", "bigint", "date", "integer", "integer", "integer")
_SQLITE_DDL = ("integer", "bigint", "bigint", "bigint", "date", "integer", "integer", "integer")
#: Rows per ``executemany`` on SQLite.
_BATCH_ROWS = 5_000


class PartitionsUnsupported(Exception):
    """Partitions are a PostgreSQL feature; SQLite keeps one plain table."""


@dataclass(frozen=True)
class Partition:
    """One capture's table: ``state`` is ``attached`` (serving reads through the
    parent), ``staged`` (ingested, not normalized yet) or ``detached`` (kept aside)."""

    table: str
    capture_id: int
    week: date | None
    tier: str
    ats: bool | None
    capture_state: str
    state: str
    rows: int
    bytes: int


def staged_table(capture_id: int) -> str:
    """The standalone table holding capture ``capture_id``'s normalized rows."""
    return f"otc_vv_{int(capture_id)}"


def create_parent() -> None:
    """Create the table normalized rows are read from (the migration's job)."""
    if vendor() == "postgresql":
        columns = ", ".join(
            f"{name} {kind} NOT NULL" for name, kind in zip(COLUMNS, _PG_DDL, strict=True)
        )
        execute(f"CREATE TABLE {PARENT} ({columns}) PARTITION BY RANGE (week, capture_id)")
    else:
        columns = ", ".join(
            f"{name} {kind} NOT NULL{' PRIMARY KEY' if name == 'id' else ''}"
            for name, kind in zip(COLUMNS, _SQLITE_DDL, strict=True)
        )
        execute(f"CREATE TABLE {PARENT} ({columns})")
        execute(f"CREATE INDEX otc_venuevolume_capture ON {PARENT} (capture_id, week)")


def create_staged(capture_id: int) -> str:
    """A new empty standalone table for the capture's rows (a leftover of the same name,
    from a capture id reused after a flush, is dropped first)."""
    table = staged_table(capture_id)
    execute(f"DROP TABLE IF EXISTS {table}")
    if vendor() == "postgresql":
        execute(f"CREATE TABLE {table} (LIKE {PARENT})")
    else:
        columns = ", ".join(
            f"{name} {kind} NOT NULL" for name, kind in zip(COLUMNS, _SQLITE_DDL, strict=True)
        )
        execute(f"CREATE TABLE {table} ({columns})")
    return table


def write_rows(table: str, rows: Iterable[Sequence[Any]]) -> None:
    """Append rows (in :data:`COLUMNS` order) to a staged table: binary ``COPY`` with
    ``FREEZE`` on PostgreSQL (the table is new in this transaction, so the rows are
    written frozen and never rewritten by vacuum), ``executemany`` on SQLite."""
    if vendor() == "postgresql":
        sql = f"COPY {table} ({', '.join(COLUMNS)}) FROM STDIN WITH (FORMAT BINARY, FREEZE)"
        with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
            copy.set_types(_PG_TYPES)
            write_row = copy.write_row
            for row in rows:
                write_row(row)
        return
    placeholders = ", ".join(["%s"] * len(COLUMNS))
    sql = f"INSERT INTO {table} ({', '.join(COLUMNS)}) VALUES ({placeholders})"
    batch: list[Sequence[Any]] = []
    with connection.cursor() as cursor:
        for row in rows:
            batch.append(row)
            if len(batch) >= _BATCH_ROWS:
                cursor.executemany(sql, batch)
                batch.clear()
        if batch:
            cursor.executemany(sql, batch)


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack("!ii", 0, 0)
_BINARY_TRAILER = struct.pack("!h", -1)
#: One row of the binary COPY in ``_COPY_ORDER``: field count, then length and value
#: of each field (date = days since 2000-01-01).
_BINARY_ROW = struct.Struct("!hiqiiiqiqiqiiiiii")
_COPY_ORDER = (
    "capture_id",
    "week",
    "id",
    "share_volume",
    "trade_count",
    "line_no",
    "issue_id",
    "participant_id",
)
_PG_EPOCH = date(2000, 1, 1)


class RowWriter:
    """Appends a capture's rows to its staged table, chunk by chunk: on PostgreSQL one
    binary ``COPY ... FREEZE`` per chunk, each row packed by one ``struct`` call (the
    table is new in this transaction, so its rows are written frozen and never
    rewritten by vacuum); on SQLite ``executemany``."""

    def __init__(self, table: str, capture_id: int, week: date) -> None:
        self.table = table
        self.capture_id = capture_id
        self.week = week
        self.base = int(capture_id) << 32

    def write(
        self,
        rows: Sequence[tuple[int, int, int, Any, Any]],
        issue_ids: dict[Any, int],
        venue_ids: dict[Any, int],
    ) -> None:
        """``rows``: (line, shares, trades, issue key, venue key)."""
        base, capture_id = self.base, self.capture_id
        if vendor() != "postgresql":
            write_rows(
                self.table,
                (
                    (
                        base + line,
                        capture_id,
                        shares,
                        trades,
                        self.week,
                        line,
                        issue_ids[issue],
                        venue_ids[venue],
                    )
                    for line, shares, trades, issue, venue in rows
                ),
            )
            return
        pack, days = _BINARY_ROW.pack, (self.week - _PG_EPOCH).days
        body = b"".join(
            pack(
                8,
                8,
                capture_id,
                4,
                days,
                8,
                base + line,
                8,
                shares,
                8,
                trades,
                4,
                line,
                4,
                issue_ids[issue],
                4,
                venue_ids[venue],
            )
            for line, shares, trades, issue, venue in rows
        )
        sql = (
            f"COPY {self.table} ({', '.join(_COPY_ORDER)}) FROM STDIN WITH (FORMAT BINARY, FREEZE)"
        )
        with connection.connection.cursor() as cursor, cursor.copy(sql) as copy:
            copy.write(_BINARY_HEADER)
            copy.write(body)
            copy.write(_BINARY_TRAILER)


def staged_exists(capture_id: int) -> bool:
    table = staged_table(capture_id)
    if vendor() == "postgresql":
        ((found,),) = fetch_all(
            "SELECT EXISTS (SELECT 1 FROM pg_class c LEFT JOIN pg_inherits i ON i.inhrelid = c.oid"
            " WHERE c.relname = %s AND c.relkind = 'r' AND i.inhrelid IS NULL)",
            [table],
        )
        return bool(found)
    sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = %s"
    return bool(fetch_all(sql, [table]))


def capture_tables() -> list[str]:
    """Names of every per-capture table (staged, attached or detached)."""
    if vendor() == "postgresql":
        sql = "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ '^otc_vv_[0-9]+$'"
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'otc_vv_[0-9]*'"
    return sorted(name for (name,) in fetch_all(sql))


def publish(capture_id: int, week: date) -> None:
    """Make the staged rows the capture's normalized rows, in the caller's transaction.

    PostgreSQL: a CHECK constraint matching the partition bounds, then ``ATTACH
    PARTITION``, which the CHECK lets skip its validation scan. No index: the
    analytics read a capture's partition whole, and a row is found by its week and
    capture (one partition, in line order). SQLite: the rows move into the table.
    """
    table = staged_table(capture_id)
    if vendor() == "postgresql":
        day = week.isoformat()
        execute(
            f"ALTER TABLE {table} ADD CONSTRAINT {table}_bounds "
            f"CHECK (week = DATE '{day}' AND capture_id = {int(capture_id)})"
        )
        execute(
            f"ALTER TABLE {PARENT} ATTACH PARTITION {table} "
            f"FOR VALUES FROM ('{day}', {int(capture_id)}) TO ('{day}', {int(capture_id) + 1})"
        )
        # Statistics for the compute that follows (a sample: ~0.1 s for a million rows);
        # without them the planner takes the new table for a few rows.
        execute(f"ANALYZE {table}")
        return
    columns = ", ".join(COLUMNS)
    execute(f"INSERT INTO {PARENT} ({columns}) SELECT {columns} FROM {table} ORDER BY id")
    execute(f"DROP TABLE {table}")


def drop_rows(capture_id: int) -> None:
    """Remove a capture's normalized rows, published or staged."""
    if vendor() != "postgresql":
        execute(f"DELETE FROM {PARENT} WHERE capture_id = %s", [capture_id])
    execute(f"DROP TABLE IF EXISTS {staged_table(capture_id)}")


def capture_rows_sql(alias: str = "vv", *, issues: bool = True) -> str:
    """A FROM item with one capture's normalized rows in their pre-dimension shape
    (``symbol`` and ``issue_name`` unless ``issues`` is false, ``mpid``,
    ``venue_name``, ``share_volume``, ``trade_count``, ``line_no``), for
    ``%(capture)s`` and ``%(week)s``; the week prunes PostgreSQL's partitions at plan
    time."""
    symbol = "i.symbol, i.name AS issue_name, " if issues else ""
    join = "JOIN otc_issue i ON i.id = v.issue_id" if issues else ""
    return f"""(SELECT {symbol}p.mpid, p.name AS venue_name,
                       v.share_volume, v.trade_count, v.line_no
                  FROM {PARENT} v
                  {join}
                  JOIN otc_participant p ON p.id = v.participant_id
                 WHERE v.week = %(week)s AND v.capture_id = %(capture)s) {alias}"""


def _require_postgresql() -> None:
    if vendor() != "postgresql":
        raise PartitionsUnsupported(
            "partitions are PostgreSQL-only: on SQLite normalized rows are one plain table"
        )


_LIST_SQL = """
    SELECT t.relname, c.id, c.week, c.tier, c.ats, c.state,
           CASE WHEN i.inhrelid IS NOT NULL THEN 'attached'
                WHEN c.normalized_at IS NULL THEN 'staged'
                ELSE 'detached' END,
           GREATEST(c.row_count - c.reject_count, 0),
           pg_total_relation_size(t.oid)
      FROM pg_class t
      JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
      LEFT JOIN pg_inherits i ON i.inhrelid = t.oid
      LEFT JOIN otc_capture c ON c.id = substr(t.relname, 8)::bigint
     WHERE t.relkind = 'r' AND t.relname ~ '^otc_vv_[0-9]+$'
"""


def list_partitions(*, before: date | None = None, state: str | None = None) -> list[Partition]:
    """Every capture table, newest week first (PostgreSQL only)."""
    _require_postgresql()
    rows = fetch_all(_LIST_SQL + " ORDER BY c.week DESC NULLS LAST, c.id DESC")
    found = [
        Partition(
            table=table,
            capture_id=capture_id if capture_id is not None else int(table[7:]),
            week=week,
            tier=tier or "",
            ats=ats,
            capture_state=capture_state or "deleted",
            state=state_ if capture_id is not None else "orphaned",
            rows=rows_ or 0,
            bytes=size,
        )
        for table, capture_id, week, tier, ats, capture_state, state_, rows_, size in rows
    ]
    if before is not None:
        found = [p for p in found if p.week is not None and p.week < before]
    if state is not None:
        found = [p for p in found if p.state == state]
    return found


def detach_before(week: date, *, drop: bool = False) -> list[Partition]:
    """Detach every attached partition of a week before ``week`` (their rows leave
    reads; the analytics stay), dropping the tables with ``drop``; one transaction."""
    _require_postgresql()
    detached = list_partitions(before=week, state="attached")
    for partition in detached:
        execute(f"ALTER TABLE {PARENT} DETACH PARTITION {partition.table}")
        if drop:
            execute(f"DROP TABLE {partition.table}")
    return detached
