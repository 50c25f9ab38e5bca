"""Normalize: a capture's staged rows checked and published as its ``VenueVolume``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.db import transaction

from executions.fencing import fence
from otc import archive
from otc.models import (
    PENDING_STATES,
    Capture,
    CaptureState,
    Issue,
    Reject,
    RejectKind,
)
from otc.services import partitions
from otc.services.errors import VolumeOutOfRange
from otc.services.lifecycle import record_failure
from otc.services.load import load_capture
from otc.services.sql import MAX_CAPTURE_VOLUME, fetch_all, safe_sum, tune_bulk_transaction
from spine.time import utc_now

__all__ = ["NormalizeResult", "normalize_capture"]


@dataclass(frozen=True)
class NormalizeResult:
    status: Literal["normalized", "already_normalized"]
    capture_id: int
    rows: int
    duplicates: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "capture_id": self.capture_id,
            "rows": self.rows,
            "duplicates": self.duplicates,
        }


def normalize_capture(capture_id: int, *, force: bool = False) -> NormalizeResult:
    """Publish the capture's normalized rows once; a second call is a no-op unless
    ``force`` (which parses the archived bytes again, e.g. after a normalization rule
    changed)."""
    try:
        return _normalize(capture_id, force=force)
    except Exception as exc:
        record_failure(capture_id, "normalize", exc)
        raise


def _normalize(capture_id: int, *, force: bool) -> NormalizeResult:
    with transaction.atomic():
        capture = Capture.objects.select_for_update().get(pk=capture_id)
        if capture.normalized_at is not None and not force:
            rows = capture.row_count - capture.reject_count
            return NormalizeResult("already_normalized", capture_id, rows)
        tune_bulk_transaction()
        if force or not partitions.staged_exists(capture_id):
            # Rebuilt from the archive: after a forced re-run, or for rows detached.
            partitions.drop_rows(capture_id)
            Reject.objects.filter(capture_id=capture_id).delete()
            load_capture(capture, archive.iter_lines(capture.checksum))
        check_volume_bounds(capture)
        rejects = Reject.objects.filter(capture_id=capture_id)
        invalid = rejects.filter(kind=RejectKind.INVALID).count()
        duplicates = rejects.filter(kind=RejectKind.DUPLICATE).count()
        rows = capture.row_count - invalid - duplicates
        partitions.publish(capture_id, capture.week)
        changes: dict[str, Any] = {"normalized_at": utc_now(), "reject_count": invalid + duplicates}
        if capture.state in PENDING_STATES:
            changes.update(state=CaptureState.STAGED, failure="")
        Capture.objects.filter(pk=capture_id).update(**changes)
        fence()
    return NormalizeResult("normalized", capture_id, rows, duplicates)


def check_volume_bounds(capture: Capture) -> None:
    """Refuse a capture whose accepted rows total more shares or trades than the
    analytics compute exactly (see ``otc.services.sql``), naming the largest symbol.
    Reads the capture's staged rows."""
    table = partitions.staged_table(capture.pk)
    ((shares, trades),) = fetch_all(
        f"SELECT {safe_sum('share_volume')}, {safe_sum('trade_count')} FROM {table}"
    )
    for total, column, unit in (
        (shares, "share_volume", "shares"),
        (trades, "trade_count", "trades"),
    ):
        if total is None or total <= MAX_CAPTURE_VOLUME:
            continue
        ((symbol, largest),) = fetch_all(
            f"SELECT i.symbol, {safe_sum('v.' + column)} AS total FROM {table} v"
            f" JOIN {Issue._meta.db_table} i ON i.id = v.issue_id"
            " GROUP BY i.symbol ORDER BY total DESC, i.symbol LIMIT 1"
        )
        raise VolumeOutOfRange(
            f"capture {capture.pk} totals {float(total):.3g} {unit}, more than the "
            f"{MAX_CAPTURE_VOLUME:,} per capture Market Spine computes exactly "
            f"(largest: {symbol} with {float(largest):.3g} {unit})"
        )
