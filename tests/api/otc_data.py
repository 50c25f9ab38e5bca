"""OTC data for the API tests, loaded once per module through the OTC services.

* the real FINRA OTC file (week of 2025-12-15, the ATS summary), as FINRA sent it;
* eight generated T1 weeks (small), for ranges, venue histories and rolling windows;
* a hand-made T2 week ingested twice — the second file is a correction — with the
  instant between the two kept, so ``as_of`` can reproduce the first answer. The T2
  week also holds one symbol of the T1 week, to exercise "pass tier".

The rows are committed (outside the tests' transactions, so every test of the module
reads them without reloading) and deleted when the module ends.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

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
from otc.sample.generator import generate_weeks
from spine.time import utc_now
from tests.otc.etl_support import row, run_etl, write_file

REAL_WEEK = date(2025, 12, 15)
T1_START = date(2025, 10, 6)
T1_WEEKS = 8
T1_ROWS = 600
T1_LAST = T1_START + timedelta(weeks=T1_WEEKS - 1)
CORRECTED_WEEK = T1_LAST


@dataclass(frozen=True)
class OtcData:
    real_capture: int
    t1_captures: list[int]
    t2_original: int
    t2_corrected: int
    before_correction: datetime
    shared_symbol: str


def _t2_lines(version: int, shared_symbol: str) -> list[str]:
    """ZZTA at two venues (60/40, then 50/50 after the correction), ZZTB at one."""
    first = 600 if version == 1 else 500
    return [
        row("ZZTA", "VNUA", first, 6, tier="T2", name="Zeta Alpha Inc. Common Stock"),
        row("ZZTA", "VNUB", 1000 - first, 4, tier="T2", name="Zeta Alpha Inc. Common Stock"),
        row("ZZTB", "VNUA", 300, 3, tier="T2", name="Zeta Beta Corp. Common Stock"),
        row(shared_symbol, "VNUB", 100, 1, tier="T2"),
    ]


def load(real_file: Path) -> OtcData:
    """Load every dataset above through ingest → normalize → compute."""
    real = run_etl(real_file, tier="OTC", week=REAL_WEEK, ats=True)["capture_id"]
    with tempfile.TemporaryDirectory(prefix="otc-api-") as tmp:
        paths = generate_weeks(
            tmp, tier="T1", start_week=T1_START, weeks=T1_WEEKS, rows=T1_ROWS, seed=11, ats=False
        )
        t1 = [
            run_etl(path, tier="T1", week=T1_START + timedelta(weeks=n))["capture_id"]
            for n, path in enumerate(paths)
        ]
        shared = (
            SymbolWeekSummary.objects.filter(capture_id=t1[-1]).order_by("symbol").first().symbol
        )
        original = run_etl(
            write_file(Path(tmp), _t2_lines(1, shared), "t2-v1.psv"),
            tier="T2",
            week=CORRECTED_WEEK,
        )["capture_id"]
        before = utc_now()
        corrected = run_etl(
            write_file(Path(tmp), _t2_lines(2, shared), "t2-v2.psv"),
            tier="T2",
            week=CORRECTED_WEEK,
        )["capture_id"]
    return OtcData(real, t1, original, corrected, before, shared)


def unload() -> None:
    """Delete every OTC row (the loaded data is committed, not rolled back)."""
    for model in (
        QualityReport,
        SymbolRolling,
        VenueRolling,
        SymbolWeekSummary,
        VenueMarketShare,
        VenueVolume,
        Reject,
    ):
        model.objects.all().delete()
    Capture.objects.update(superseded_by=None)
    Capture.objects.all().delete()
    Venue.objects.all().delete()


def loaded(django_db_blocker: object, real_file: Path) -> Iterator[OtcData]:
    """Body of a module-scoped fixture: load, hand over, clean up."""
    with django_db_blocker.unblock():  # type: ignore[attr-defined]
        unload()
        try:
            yield load(real_file)
        finally:
            unload()
