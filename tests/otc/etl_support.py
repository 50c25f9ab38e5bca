"""Helpers shared by the OTC data-path tests (and the SQLite dialect script).

Kept free of pytest so ``dialect_dump.py`` can import it in a subprocess.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from otc.models import (
    Capture,
    QualityReport,
    Reject,
    SymbolRolling,
    SymbolWeekSummary,
    Venue,
    VenueMarketShare,
    VenueRolling,
    VenueVolume,
)
from otc.parser import HEADER, tier_description_for
from otc.services import compute_capture, ingest_file, ingest_lines, normalize_capture

HEADER_LINE = "|".join(HEADER)
WEEK = date(2025, 12, 15)


def row(
    symbol: str,
    mpid: str,
    volume: int | str,
    trades: int | str,
    *,
    tier: str = "OTC",
    updated: str = "2025-12-29",
    name: str | None = None,
    venue: str | None = None,
) -> str:
    """One download-format data line (without newline)."""
    return "|".join(
        [
            tier_description_for(tier),
            symbol,
            name if name is not None else f"{symbol} Holdings, Inc. Common Stock",
            venue if venue is not None else f"{mpid} VENUE",
            mpid,
            str(volume),
            str(trades),
            updated,
        ]
    )


def file_bytes(lines: Iterable[str], *, header: bool = True, newline: str = "\n") -> bytes:
    body = ([HEADER_LINE] if header else []) + list(lines)
    return (newline.join(body) + newline).encode()


def write_file(directory: Path, lines: Iterable[str], name: str = "week.psv", **kw: Any) -> Path:
    path = directory / name
    path.write_bytes(file_bytes(lines, **kw))
    return path


def byte_lines(data: bytes) -> list[bytes]:
    """Split bytes into lines that keep their endings, like iterating a binary file."""
    return data.splitlines(keepends=True)


def run_etl(
    source: Path | bytes, *, tier: str = "OTC", week: date | str = WEEK, ats: bool = False
) -> dict[str, Any]:
    """Ingest, normalize and compute; return the three results as dicts."""
    if isinstance(source, bytes):
        ingested = ingest_lines(byte_lines(source), source="test", tier=tier, week=week, ats=ats)
    else:
        ingested = ingest_file(source, tier=tier, week=week, ats=ats)
    normalized = normalize_capture(ingested.capture_id)
    computed = compute_capture(ingested.capture_id)
    return {
        "ingest": ingested.as_dict(),
        "normalize": normalized.as_dict(),
        "compute": computed.as_dict(),
        "capture_id": ingested.capture_id,
    }


def stored_counts() -> dict[str, int]:
    """How many rows each OTC table holds."""
    models = (Capture, Reject, VenueVolume, SymbolWeekSummary, VenueMarketShare)
    return {model.__name__: model.objects.count() for model in models}


def assert_nothing_stored() -> None:
    counts = stored_counts()
    assert counts == dict.fromkeys(counts, 0), counts


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _rows(queryset: Any, fields: list[str]) -> list[dict[str, Any]]:
    return [{k: _plain(v) for k, v in r.items()} for r in queryset.values(*fields)]


def analytics_snapshot(capture_id: int) -> dict[str, Any]:
    """Everything computed for a capture, in a database-independent JSON-ready form."""
    capture = Capture.objects.get(pk=capture_id)
    summary_fields = [
        "symbol",
        "issue_name",
        "total_volume",
        "total_trades",
        "venue_count",
        "avg_trade_size",
        "top_venue_mpid",
        "top_venue_name",
        "top_venue_share",
        "hhi",
        "concentration",
    ]
    share_fields = [
        "mpid",
        "venue_name",
        "total_volume",
        "total_trades",
        "symbol_count",
        "zero_volume_rows",
        "market_share",
        "rank",
    ]
    rolling_fields = [
        "window_start",
        "weeks_in_window",
        "current_volume",
        "window_volume",
        "avg_volume",
        "avg_trades",
        "trend",
    ]
    report = QualityReport.objects.filter(capture_id=capture_id, replaced_at__isnull=True).first()
    return {
        "capture": {
            "tier": capture.tier,
            "week": capture.week.isoformat(),
            "ats": capture.ats,
            "checksum": capture.checksum,
            "rows": capture.row_count,
            "rejects": capture.reject_count,
            "warnings": capture.warnings,
            "grade": capture.quality_grade,
        },
        "rejects": _rows(
            Reject.objects.filter(capture_id=capture_id).order_by("line_no"),
            ["line_no", "raw", "reason"],
        ),
        "venue_volumes": _rows(
            VenueVolume.objects.filter(capture_id=capture_id).order_by("symbol", "mpid"),
            ["symbol", "mpid", "venue_name", "share_volume", "trade_count", "avg_trade_size"],
        ),
        "symbol_summaries": _rows(
            SymbolWeekSummary.objects.filter(capture_id=capture_id).order_by("symbol"),
            summary_fields,
        ),
        "venue_shares": _rows(
            VenueMarketShare.objects.filter(capture_id=capture_id).order_by("mpid"), share_fields
        ),
        "symbol_rolling": _rows(
            SymbolRolling.objects.filter(capture_id=capture_id, replaced_at__isnull=True).order_by(
                "symbol"
            ),
            ["symbol", *rolling_fields],
        ),
        "venue_rolling": _rows(
            VenueRolling.objects.filter(capture_id=capture_id, replaced_at__isnull=True).order_by(
                "mpid"
            ),
            ["mpid", *rolling_fields],
        ),
        "quality": None
        if report is None
        else {
            "grade": report.grade,
            "metrics": {k: v for k, v in report.metrics.items() if not k.endswith("capture_id")},
            "warnings": report.warnings,
            "failures": report.failures,
        },
        "venues": _rows(
            Venue.objects.order_by("mpid"), ["mpid", "name", "first_seen_week", "last_seen_week"]
        ),
    }
