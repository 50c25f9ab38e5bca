"""Migration 0010 on a database holding the real FINRA week: raw rows → the archive,
wide normalized rows → compact partitions, and back."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader

from otc import archive
from otc.parser import WeeklyFileParser
from tests.otc.etl_support import file_bytes, row

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="migrations run on PostgreSQL"),
]

BEFORE = [("otc", "0009_verbose_names")]
#: The newest otc migration (0010 moves the data; the later ones only add to it), so the
#: current models read what the migrations left.
AFTER = [
    key
    for key in MigrationLoader(None, ignore_no_migrations=True).graph.leaf_nodes()
    if key[0] == "otc"
]
REAL_WEEK = date(2025, 12, 15)
OTHER_WEEK = date(2025, 12, 8)
T0 = datetime(2025, 12, 20, tzinfo=UTC)
#: A file the raw rows cannot reproduce: the parser skipped its blank line.
WITH_BLANK = file_bytes([row("AAAA", "OTCN", 10, 2), "   ", row("BBBB", "OTCX", 7, 0)])

OLD_VV = """
    INSERT INTO otc_venuevolume (id, capture_id, line_no, week, tier, ats, symbol,
           issue_name, mpid, venue_name, share_volume, trade_count, avg_trade_size)
    SELECT r.id, r.capture_id, r.line_no, c.week, c.tier, c.ats, r.symbol, r.issue_name,
           r.mpid, r.venue_name, r.share_quantity, r.trade_count,
           CASE WHEN r.trade_count > 0 THEN
                ((2 * r.share_quantity * 10000 + r.trade_count) / (2 * r.trade_count)) * 0.0001
           END
      FROM otc_rawrow r JOIN otc_capture c ON c.id = r.capture_id
     WHERE r.reject_reason IS NULL
"""
VV_FIELDS = (
    "id",
    "capture_id",
    "line_no",
    "week",
    "tier",
    "ats",
    "symbol",
    "issue_name",
    "mpid",
    "venue_name",
    "share_volume",
    "trade_count",
    "avg_trade_size",
)


def migrate(targets: list[tuple[str, str]]) -> Any:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps() -> Iterator[Any]:
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes()
    yield migrate(BEFORE)
    migrate(latest)


def _capture(apps: Any, data: bytes, week: date) -> Any:
    capture = apps.get_model("otc", "Capture").objects.create(
        tier="OTC",
        ats=True,
        week=week,
        source="f.psv",
        checksum=hashlib.sha256(data).hexdigest(),
        ingested_at=T0,
        state="current",
        promoted_at=T0,
        normalized_at=T0,
        computed_at=T0,
    )
    raw = apps.get_model("otc", "RawRow")
    parsed = WeeklyFileParser(data.splitlines(keepends=True), expected_tier="OTC")
    raw.objects.bulk_create(
        raw(id=(capture.pk << 32) + r.line_no, capture_id=capture.pk, **r._asdict()) for r in parsed
    )
    capture.row_count = parsed.rows_read
    capture.last_update_dates = sorted(d.isoformat() for d in parsed.last_update_dates)
    capture.save(update_fields=["row_count", "last_update_dates"])
    return capture


def _old_rows(apps: Any) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    raw = apps.get_model("otc", "RawRow").objects.order_by("id").values_list()
    vv = apps.get_model("otc", "VenueVolume").objects.order_by("id").values_list(*VV_FIELDS)
    return list(raw), list(vv)


def test_the_real_week_moves_to_the_archive_and_partitions_and_back(
    old_apps: Any, real_otc_file: Path
) -> None:
    data = real_otc_file.read_bytes()
    checksum = hashlib.sha256(data).hexdigest()
    if archive.archive_storage().exists(archive.object_name(checksum)):
        archive.archive_storage().delete(archive.object_name(checksum))
    real = _capture(old_apps, data, REAL_WEEK)
    other = _capture(old_apps, WITH_BLANK, OTHER_WEEK)
    with connection.cursor() as cursor:
        cursor.execute(OLD_VV)
    raw_before, vv_before = _old_rows(old_apps)
    assert len(vv_before) == 5328 + 2

    migrate(AFTER)
    from otc.models import Capture, VenueVolume
    from otc.services import partitions

    statuses = dict(Capture.objects.values_list("pk", "archive_status"))
    assert statuses == {real.pk: "archived", other.pk: "unreproducible"}
    assert Capture.objects.get(pk=other.pk).checksum == other.checksum  # never changed
    assert b"".join(archive.iter_chunks(checksum)) == data
    vv_after = list(VenueVolume.objects.order_by("id").values_list(*VV_FIELDS))
    assert vv_after == vv_before
    listed = {(p.capture_id, p.state, p.rows) for p in partitions.list_partitions()}
    assert listed == {(real.pk, "attached", 5328), (other.pk, "attached", 2)}

    apps = migrate(BEFORE)
    raw_back, vv_back = _old_rows(apps)
    assert vv_back == vv_before
    real_raw = [r for r in raw_before if r[1] == real.pk]
    assert [r for r in raw_back if r[1] == real.pk] == real_raw
    # Without archived bytes the raw rows come back from the normalized rows.
    assert [r for r in raw_back if r[1] == other.pk] == [r for r in raw_before if r[1] == other.pk]
