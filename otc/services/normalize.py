"""Normalize: a capture's valid raw rows → ``VenueVolume``; duplicates → ``Reject``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.db import IntegrityError, transaction

from executions.fencing import fence
from otc.models import (
    PENDING_STATES,
    Capture,
    CaptureState,
    RawRow,
    Reject,
    RejectKind,
    VenueVolume,
    capture_key_range,
)
from otc.services.errors import VolumeOutOfRange
from otc.services.lifecycle import record_failure
from otc.services.sql import (
    MAX_CAPTURE_VOLUME,
    execute,
    fetch_all,
    round_div,
    safe_sum,
    tune_bulk_transaction,
)
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
    """Write the capture's normalized rows once; a second call is a no-op unless
    ``force`` (which rewrites them, e.g. after a normalization rule changed)."""
    try:
        return _normalize(capture_id, force=force)
    except Exception as exc:
        record_failure(capture_id, "normalize", exc)
        raise


def _normalize(capture_id: int, *, force: bool) -> NormalizeResult:
    with transaction.atomic():
        capture = Capture.objects.select_for_update().get(pk=capture_id)
        if capture.normalized_at is not None and not force:
            rows = VenueVolume.objects.filter(capture_id=capture_id).count()
            return NormalizeResult("already_normalized", capture_id, rows)
        check_volume_bounds(capture)
        tune_bulk_transaction()
        VenueVolume.objects.filter(capture_id=capture_id).delete()
        Reject.objects.filter(capture_id=capture_id, kind=RejectKind.DUPLICATE).delete()
        invalid = Reject.objects.filter(capture_id=capture_id).count()
        rows = _insert_venue_volume(capture)
        duplicates = 0
        if rows < capture.row_count - invalid:
            duplicates = _reject_duplicates(capture_id)
        changes: dict[str, Any] = {"normalized_at": utc_now(), "reject_count": invalid + duplicates}
        if capture.state in PENDING_STATES:
            changes.update(state=CaptureState.STAGED, failure="")
        Capture.objects.filter(pk=capture_id).update(**changes)
        fence()
    return NormalizeResult("normalized", capture_id, rows, duplicates)


def check_volume_bounds(capture: Capture) -> None:
    """Refuse a capture whose accepted rows total more shares or trades than the
    analytics compute exactly (see ``otc.services.sql``), naming the largest symbol."""
    lowest, bound = capture_key_range(capture.pk)
    where = f"""
          FROM {RawRow._meta.db_table}
         WHERE id >= %(lowest)s AND id < %(bound)s AND reject_reason IS NULL"""
    params = {"lowest": lowest, "bound": bound}
    ((shares, trades),) = fetch_all(
        f"SELECT {safe_sum('share_quantity')}, {safe_sum('trade_count')} {where}", params
    )
    for total, column, unit in (
        (shares, "share_quantity", "shares"),
        (trades, "trade_count", "trades"),
    ):
        if total is None or total <= MAX_CAPTURE_VOLUME:
            continue
        ((symbol, largest),) = fetch_all(
            f"SELECT symbol, {safe_sum(column)} AS total {where}"
            " GROUP BY symbol ORDER BY total DESC, symbol LIMIT 1",
            params,
        )
        raise VolumeOutOfRange(
            f"capture {capture.pk} totals {float(total):.3g} {unit}, more than the "
            f"{MAX_CAPTURE_VOLUME:,} per capture Market Spine computes exactly "
            f"(largest: {symbol} with {float(largest):.3g} {unit})"
        )


def _insert_venue_volume(capture: Capture) -> int:
    """Insert the parser-accepted rows; the first line of a symbol+MPID wins.

    Optimistic: a plain ``INSERT ... SELECT`` in a savepoint, which the unique key
    refuses if the file repeats a symbol+MPID. Only then is it redone with
    ``ON CONFLICT DO NOTHING`` in line order (speculative insertion costs about twice
    as much per row, so the usual, duplicate-free file does not pay for it).
    """
    try:
        with transaction.atomic():
            return execute(_INSERT_VV.format(order="", on_conflict=""), _params(capture))
    except IntegrityError:
        on_conflict = "ON CONFLICT (capture_id, symbol, mpid) DO NOTHING"
        sql = _INSERT_VV.format(order="ORDER BY r.id", on_conflict=on_conflict)
        return execute(sql, _params(capture))


def _params(capture: Capture) -> dict[str, Any]:
    lowest, bound = capture_key_range(capture.pk)
    return {
        "lowest": lowest,
        "bound": bound,
        "week": capture.week,
        "tier": capture.tier,
        "ats": capture.ats,
    }


_INSERT_VV = f"""
    INSERT INTO {VenueVolume._meta.db_table}
           (id, capture_id, line_no, week, tier, ats, symbol, issue_name, mpid, venue_name,
            share_volume, trade_count, avg_trade_size)
    SELECT r.id, r.capture_id, r.line_no, %(week)s, %(tier)s, %(ats)s, r.symbol, r.issue_name,
           r.mpid, r.venue_name, r.share_quantity, r.trade_count,
           {round_div("r.share_quantity", "r.trade_count")}
      FROM {RawRow._meta.db_table} r
     WHERE r.id >= %(lowest)s AND r.id < %(bound)s AND r.reject_reason IS NULL
     {{order}}
    {{on_conflict}}
"""


def _reject_duplicates(capture_id: int) -> int:
    """Reject valid lines whose symbol+MPID was kept from an earlier line."""
    vv, raw, reject = VenueVolume._meta.db_table, RawRow._meta.db_table, Reject._meta.db_table
    lowest, bound = capture_key_range(capture_id)
    return execute(
        f"""
        INSERT INTO {reject} (capture_id, line_no, raw, reason, kind)
        SELECT r.capture_id, r.line_no, r.raw,
               'duplicate symbol+MPID: ' || r.symbol || '/' || r.mpid
               || ' repeats line ' || CAST(v.line_no AS TEXT),
               %(kind)s
          FROM {raw} r
          JOIN {vv} v
            ON v.capture_id = r.capture_id AND v.symbol = r.symbol AND v.mpid = r.mpid
         WHERE r.id >= %(lowest)s AND r.id < %(bound)s AND r.reject_reason IS NULL
           AND v.id <> r.id
        """,
        {"lowest": lowest, "bound": bound, "kind": RejectKind.DUPLICATE},
    )
