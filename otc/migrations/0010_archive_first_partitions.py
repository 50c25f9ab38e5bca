"""Archive first: captures' bytes to the archive, ``RawRow`` gone, compact normalized
rows with symbol/venue dimensions, partitioned by (week, capture) on PostgreSQL.

Forward, each capture's bytes are rebuilt from its raw rows (FINRA's header, then the
lines; LF or CRLF, with or without a final newline or a BOM) and archived when they
hash to the capture's checksum; a capture whose bytes cannot be reproduced (a rejected
line was stored shortened, blank lines were skipped) is marked ``unreproducible`` and
keeps its checksum. Its normalized rows move into the new table either way. Backward,
raw rows are parsed again from the archive (from the normalized rows and rejects for an
unreproducible capture) and the wide normalized rows are rebuilt from the dimensions.
See docs/otc.md.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
from datetime import date
from typing import Any

from django.db import migrations, models
from django.db.migrations.operations.base import Operation

from otc.services import partitions

HEADER = (
    "tierDescription|issueSymbolIdentifier|issueName|marketParticipantName|MPID|"
    "totalWeeklyShareQuantity|totalWeeklyTradeCount|lastUpdateDate"
)
#: (BOM, line ending, final newline) in the order tried: FINRA's own files first.
_VARIANTS = [
    (bom, eol, final)
    for bom in (b"", b"\xef\xbb\xbf")
    for eol in (b"\n", b"\r\n")
    for final in (True, False)
]
_BYTEWISE = {"otc_issue": ("symbol",), "otc_participant": ("mpid",)}
_OLD_BYTEWISE = {"otc_rawrow": ("symbol", "mpid"), "otc_venuevolume": ("symbol", "mpid")}
_DESCRIPTIONS = {"T1": "NMS Tier 1", "T2": "NMS Tier 2", "OTC": "OTC"}


def _rows(connection: Any, sql: str, params: list[Any]) -> Any:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        while batch := cursor.fetchmany(5_000):
            yield from batch


def _rebuilt(connection: Any, capture_id: int, variant: tuple[bytes, bytes, bool]) -> Any:
    bom, eol, final = variant
    lines = _rows(
        connection, "SELECT raw FROM otc_rawrow WHERE capture_id = %s ORDER BY id", [capture_id]
    )
    yield bom + HEADER.encode()
    for (raw,) in lines:
        yield eol + raw.encode("utf-8")
    if final:
        yield eol


def _archive_captures(connection: Any, capture_model: Any) -> None:
    from otc import archive

    for capture in capture_model.objects.exclude(checksum="").order_by("pk"):
        digests = [hashlib.sha256() for _ in _VARIANTS]
        for n, variant in enumerate(_VARIANTS):
            for piece in _rebuilt(connection, capture.pk, variant):
                digests[n].update(piece)
            if digests[n].hexdigest() == capture.checksum:
                with tempfile.SpooledTemporaryFile(max_size=16 << 20) as spool:
                    for piece in _rebuilt(connection, capture.pk, variant):
                        spool.write(piece)
                    spool.seek(0)
                    archive.store(spool)
                break
        else:
            capture_model.objects.filter(pk=capture.pk).update(archive_status="unreproducible")


def _collate(schema_editor: Any, tables: dict[str, tuple[str, ...]], collation: str) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    for table, columns in tables.items():
        for column in columns:
            schema_editor.execute(
                f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE text COLLATE {collation}'
            )


def _forward(old_apps: Any, new_apps: Any, schema_editor: Any) -> None:
    connection = schema_editor.connection
    capture_model = old_apps.get_model("otc", "Capture")
    _archive_captures(connection, capture_model)
    execute = schema_editor.execute
    execute(
        "INSERT INTO otc_issue (symbol, name) SELECT DISTINCT symbol, issue_name"
        " FROM otc_venuevolume WHERE true ON CONFLICT (symbol, name) DO NOTHING"
    )
    execute(
        "INSERT INTO otc_participant (mpid, name) SELECT DISTINCT mpid, venue_name"
        " FROM otc_venuevolume WHERE true ON CONFLICT (mpid, name) DO NOTHING"
    )
    execute("ALTER TABLE otc_venuevolume RENAME TO otc_venuevolume_v1")
    partitions.create_parent()
    select = """
        SELECT v.id, v.capture_id, v.share_volume, v.trade_count, v.week, v.line_no,
               i.id, p.id
          FROM otc_venuevolume_v1 v
          JOIN otc_issue i ON i.symbol = v.symbol AND i.name = v.issue_name
          JOIN otc_participant p ON p.mpid = v.mpid AND p.name = v.venue_name
    """
    columns = ", ".join(partitions.COLUMNS)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.id, c.week, c.normalized_at IS NOT NULL FROM otc_capture c"
                " WHERE EXISTS (SELECT 1 FROM otc_venuevolume_v1 v WHERE v.capture_id = c.id)"
                " ORDER BY c.id"
            )
            for capture_id, week, _ in cursor.fetchall():
                table = partitions.create_staged(capture_id)
                execute(
                    f"INSERT INTO {table} ({columns}) {select}"
                    " WHERE v.capture_id = %s ORDER BY v.id",
                    [capture_id],
                )
                partitions.publish(capture_id, week)
        else:
            execute(f"INSERT INTO otc_venuevolume ({columns}) {select} ORDER BY v.id")
    execute("DROP TABLE otc_venuevolume_v1")
    execute("DROP TABLE otc_rawrow")


def _raw_row(capture_id: int, row: Any) -> tuple[Any, ...]:
    return ((capture_id << 32) + row[0], capture_id, *row)


def _backward(old_apps: Any, new_apps: Any, schema_editor: Any) -> None:
    from otc import archive
    from otc.parser import WeeklyFileParser

    connection = schema_editor.connection
    execute = schema_editor.execute
    execute(f"ALTER TABLE {partitions.PARENT} RENAME TO otc_venuevolume_v2")
    schema_editor.create_model(old_apps.get_model("otc", "RawRow"))
    schema_editor.create_model(old_apps.get_model("otc", "VenueVolume"))
    _collate(schema_editor, _OLD_BYTEWISE, '"C"')
    avg = (
        "CASE WHEN v.trade_count > 0 THEN "
        "((2 * v.share_volume * 10000 + v.trade_count) / (2 * v.trade_count)) * 0.0001 END"
    )
    execute(
        f"""
        INSERT INTO otc_venuevolume (id, capture_id, line_no, week, tier, ats, symbol,
               issue_name, mpid, venue_name, share_volume, trade_count, avg_trade_size)
        SELECT v.id, v.capture_id, v.line_no, v.week, c.tier, c.ats, i.symbol, i.name,
               p.mpid, p.name, v.share_volume, v.trade_count, {avg}
          FROM otc_venuevolume_v2 v
          JOIN otc_capture c ON c.id = v.capture_id
          JOIN otc_issue i ON i.id = v.issue_id
          JOIN otc_participant p ON p.id = v.participant_id
        """
    )
    insert = (
        "INSERT INTO otc_rawrow (id, capture_id, line_no, raw, tier_description, symbol,"
        " issue_name, venue_name, mpid, share_quantity, trade_count, last_update_date,"
        " reject_reason) VALUES (" + ", ".join(["%s"] * 13) + ")"
    )
    capture_model = old_apps.get_model("otc", "Capture")
    with connection.cursor() as cursor:
        for capture in capture_model.objects.exclude(checksum="").order_by("pk"):
            if capture.archive_status == "archived":
                try:
                    lines = list(archive.iter_lines(capture.checksum))
                except archive.ArchiveError:
                    lines = None
            else:
                lines = None
            if lines is not None:
                rows = WeeklyFileParser(lines, expected_tier=capture.tier)
                batch = [_raw_row(capture.pk, row) for row in rows]
            else:
                batch = _raw_rows_from_tables(connection, capture)
            for start in range(0, len(batch), 5_000):
                cursor.executemany(insert, batch[start : start + 5_000])
    cascade = " CASCADE" if connection.vendor == "postgresql" else ""
    execute(f"DROP TABLE otc_venuevolume_v2{cascade}")
    if connection.vendor == "postgresql":  # staged, never-normalized captures' tables
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relname FROM pg_class WHERE relkind = 'r' AND relname ~ '^otc_vv_[0-9]+$'"
            )
            for (table,) in cursor.fetchall():
                execute(f"DROP TABLE {table}")


def _raw_rows_from_tables(connection: Any, capture: Any) -> list[tuple[Any, ...]]:
    """Raw rows of a capture without archived bytes: its normalized rows as lines in
    FINRA's format and its rejects' stored text."""
    from otc.parser import WeeklyFileParser

    tier = _DESCRIPTIONS[capture.tier]
    updated = (capture.last_update_dates or [None])[0]
    day = None if updated is None else date.fromisoformat(updated)
    rows: list[tuple[Any, ...]] = []
    for line_no, symbol, issue, venue, mpid, shares, trades in _rows(
        connection,
        """SELECT v.line_no, i.symbol, i.name, p.name, p.mpid, v.share_volume, v.trade_count
             FROM otc_venuevolume_v2 v JOIN otc_issue i ON i.id = v.issue_id
             JOIN otc_participant p ON p.id = v.participant_id
            WHERE v.capture_id = %s ORDER BY v.id""",
        [capture.pk],
    ):
        raw = f"{tier}|{symbol}|{issue}|{venue}|{mpid}|{shares}|{trades}|{updated or ''}"
        row = (line_no, raw, tier, symbol, issue, venue, mpid, shares, trades, day, None)
        rows.append(_raw_row(capture.pk, row))
    for line_no, raw, reason, kind in _rows(
        connection,
        "SELECT line_no, raw, reason, kind FROM otc_reject WHERE capture_id = %s",
        [capture.pk],
    ):
        parsed = None
        if kind == "duplicate":
            source = [HEADER.encode() + b"\n", raw.encode("utf-8") + b"\n"]
            parsed = next(iter(WeeklyFileParser(io.BytesIO(b"".join(source)))), None)
        if parsed is not None:
            rows.append(_raw_row(capture.pk, (line_no, *parsed[1:])))
        else:
            blank = ("", "", "", "", "", None, None, None)
            rows.append(_raw_row(capture.pk, (line_no, raw, *blank, reason)))
    rows.sort()
    return rows


class RebuildDataPath(Operation):
    """Swap the raw and wide normalized rows for the archive and the compact table."""

    reversible = True
    state_operations = [
        migrations.DeleteModel(name="RawRow"),
        migrations.DeleteModel(name="VenueVolume"),
        migrations.CreateModel(
            name="VenueVolume",
            fields=[
                (
                    "id",
                    models.BigIntegerField(
                        editable=False,
                        help_text="line_key(capture, line_no)",
                        primary_key=True,
                        serialize=False,
                    ),
                ),
                ("week", models.DateField()),
                (
                    "line_no",
                    models.PositiveIntegerField(help_text="The raw line this row came from."),
                ),
                ("share_volume", models.BigIntegerField()),
                ("trade_count", models.BigIntegerField()),
                (
                    "capture",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.CASCADE,
                        related_name="venue_volumes",
                        to="otc.capture",
                    ),
                ),
                (
                    "issue",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="otc.issue",
                    ),
                ),
                (
                    "participant",
                    models.ForeignKey(
                        db_constraint=False,
                        db_index=False,
                        on_delete=models.deletion.DO_NOTHING,
                        related_name="+",
                        to="otc.participant",
                    ),
                ),
            ],
            options={"ordering": ["id"]},
        ),
    ]

    def state_forwards(self, app_label: str, state: Any) -> None:
        for operation in self.state_operations:
            operation.state_forwards(app_label, state)

    def database_forwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        _forward(from_state.apps, to_state.apps, schema_editor)

    def database_backwards(
        self, app_label: str, schema_editor: Any, from_state: Any, to_state: Any
    ) -> None:
        _backward(to_state.apps, from_state.apps, schema_editor)

    def describe(self) -> str:
        return "Archive captures' bytes; RawRow removed; compact, partitioned VenueVolume"


class Migration(migrations.Migration):
    dependencies = [("otc", "0009_verbose_names")]

    operations = [
        migrations.CreateModel(
            name="Issue",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("symbol", models.TextField()),
                ("name", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["symbol", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("symbol", "name"), name="otc_issue_key")
                ],
            },
        ),
        migrations.CreateModel(
            name="Participant",
            fields=[
                ("id", models.AutoField(primary_key=True, serialize=False)),
                ("mpid", models.TextField()),
                ("name", models.TextField(blank=True)),
            ],
            options={
                "ordering": ["mpid", "id"],
                "constraints": [
                    models.UniqueConstraint(fields=("mpid", "name"), name="otc_participant_key")
                ],
            },
        ),
        migrations.RunPython(
            lambda apps, editor: _collate(editor, _BYTEWISE, '"C"'), migrations.RunPython.noop
        ),
        migrations.AddField(
            model_name="capture",
            name="archive_status",
            field=models.CharField(
                choices=[
                    ("archived", "Archived"),
                    ("unreproducible", "Not reproducible (migrated)"),
                ],
                default="archived",
                help_text="Unreproducible: a capture migrated from raw rows whose bytes did "
                "not hash to its checksum again; its raw lines are not in the archive.",
                max_length=16,
            ),
        ),
        RebuildDataPath(),
    ]
