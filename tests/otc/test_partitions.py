"""Normalized volume in per-capture partitions: attach without a scan, pruning by week,
an atomic supersede, detach (kept or dropped) and ``manage.py otc partitions``."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

import otc.services.compute
from otc import selectors
from otc.models import Capture, CaptureState, SymbolWeekSummary, VenueVolume
from otc.services import compute_capture, ingest_file, normalize_capture, partitions
from tests.otc.etl_support import WEEK, row, run_etl, write_file

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="partitions are PostgreSQL's"
)
REAL_WEEK = date(2025, 12, 15)
PRIOR = WEEK - timedelta(weeks=1)
LINES = [row(f"S{i:03d}", mpid, 100 + i, 1 + i % 7) for i in range(40) for mpid in ("OTCN", "OTCX")]


def _own_partitions() -> list[partitions.Partition]:
    """The capture tables of this test's captures: tests that commit (worker processes,
    live servers) leave tables behind whose captures their flush deleted."""
    return [p for p in partitions.list_partitions() if p.state != "orphaned"]


def _volumes(week: date) -> list[tuple[Any, ...]]:
    return sorted(selectors.venue_volumes(week=week).values_list("symbol", "mpid", "share_volume"))


@on_postgresql
def test_a_capture_is_attached_as_its_own_partition_without_a_validation_scan(
    real_otc_file: Path,
) -> None:
    capture_id = ingest_file(real_otc_file, tier="OTC", week=REAL_WEEK, ats=True).capture_id
    assert _own_partitions()[0].state == "staged"
    notices: list[str] = []
    raw = connection.connection
    raw.add_notice_handler(lambda diag: notices.append(diag.message_primary or ""))
    with connection.cursor() as cursor:
        cursor.execute("SET client_min_messages = debug1")
    try:
        normalize_capture(capture_id)
    finally:
        with connection.cursor() as cursor:
            cursor.execute("RESET client_min_messages")
    table = partitions.staged_table(capture_id)
    assert f'partition constraint for table "{table}" is implied by existing constraints' in (
        notices
    )
    (listed,) = _own_partitions()
    assert (listed.table, listed.capture_id, listed.week, listed.tier, listed.ats) == (
        table,
        capture_id,
        REAL_WEEK,
        "OTC",
        True,
    )
    assert (listed.state, listed.capture_state, listed.rows) == ("attached", "staged", 5328)
    assert listed.bytes > 5328 * 60
    assert VenueVolume.objects.filter(capture_id=capture_id).count() == 5328


@on_postgresql
def test_reads_of_a_week_touch_only_its_partitions(tmp_path: Path) -> None:
    first = run_etl(write_file(tmp_path, LINES, "a.psv"), tier="OTC", week=PRIOR)["capture_id"]
    second = run_etl(write_file(tmp_path, LINES[:-2], "b.psv"), tier="OTC", week=WEEK)["capture_id"]
    query = VenueVolume.objects.filter(week=WEEK).values("share_volume").query
    sql, params = query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        plan = "\n".join(line for (line,) in cursor.fetchall())
    assert partitions.staged_table(second) in plan
    assert partitions.staged_table(first) not in plan


@on_postgresql
def test_a_supersede_that_fails_halfway_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = run_etl(write_file(tmp_path, LINES, "a.psv"), tier="OTC", week=WEEK)["capture_id"]
    before = _volumes(WEEK)
    corrected = [row("S000", "OTCN", 999, 9), *LINES[1:]]
    new = ingest_file(
        write_file(tmp_path, corrected, "b.psv"), tier="OTC", week=WEEK, ats=False
    ).capture_id
    normalize_capture(new)

    def boom(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk on fire")

    # compute_rolling runs after the promotion, in the same transaction.
    monkeypatch.setattr(otc.services.compute, "compute_rolling", boom)
    with pytest.raises(RuntimeError, match="disk on fire"):
        compute_capture(new)

    assert Capture.objects.get(pk=old).state == CaptureState.CURRENT
    assert Capture.objects.get(pk=new).state == CaptureState.FAILED
    assert _volumes(WEEK) == before
    assert not SymbolWeekSummary.objects.filter(capture_id=new).exists()
    states = {p.capture_id: p.state for p in _own_partitions()}
    assert states == {old: "attached", new: "attached"}

    monkeypatch.undo()
    compute_capture(new)  # the re-run supersedes, all at once
    assert Capture.objects.get(pk=old).state == CaptureState.SUPERSEDED
    assert ("S000", "OTCN", 999) in _volumes(WEEK)
    as_of = Capture.objects.get(pk=new).promoted_at - timedelta(microseconds=1)
    old_rows = selectors.venue_volumes(week=WEEK, as_of=as_of)
    assert sorted(old_rows.values_list("symbol", "mpid", "share_volume")) == before


@on_postgresql
def test_detach_keeps_the_tables_unless_dropped(tmp_path: Path) -> None:
    first = run_etl(write_file(tmp_path, LINES, "a.psv"), tier="OTC", week=PRIOR)["capture_id"]
    second = run_etl(write_file(tmp_path, LINES[:-2], "b.psv"), tier="OTC", week=WEEK)["capture_id"]
    out = _call("detach", "--before", WEEK.isoformat())
    assert out == (
        f"1 partition(s) of weeks before {WEEK.isoformat()} detached (tables kept): "
        f"{partitions.staged_table(first)}\n"
    )
    states = {p.capture_id: p.state for p in _own_partitions()}
    assert states == {first: "detached", second: "attached"}
    assert not VenueVolume.objects.filter(capture_id=first).exists()
    assert SymbolWeekSummary.objects.filter(capture_id=first).exists()  # analytics stay
    listing = _call("list")
    assert f"{PRIOR.isoformat()}  {first:>7}  OTC  non-ATS  detached" in listing

    assert _call("detach", "--before", WEEK.isoformat()).startswith("0 partition(s)")
    # Normalizing again rebuilds the rows from the archive.
    normalize_capture(first, force=True)
    assert VenueVolume.objects.filter(capture_id=first).count() == len(LINES)

    out = _call("detach", "--before", (WEEK + timedelta(weeks=1)).isoformat(), "--drop")
    assert "2 partition(s)" in out and "detached and dropped" in out
    assert _own_partitions() == []
    assert not VenueVolume.objects.exists()


@pytest.mark.embedded
def test_the_partitions_command_says_where_it_works() -> None:
    if connection.vendor == "postgresql":
        tables = len(partitions.list_partitions())
        assert _call("list").startswith(f"{tables} capture table(s), ")
        return
    for action in (["list"], ["detach", "--before", WEEK.isoformat()]):
        with pytest.raises(CommandError, match="partitions are PostgreSQL-only") as caught:
            call_command("otc", "partitions", *action)
        assert caught.value.returncode == 1


def _call(*args: str) -> str:
    from io import StringIO

    out = StringIO()
    call_command("otc", "partitions", *args, stdout=out)
    return out.getvalue()
