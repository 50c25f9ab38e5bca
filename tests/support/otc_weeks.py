"""Consecutive T1 weeks of generated data, ingested and computed through the services."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from otc.models import Capture
from otc.sample.generator import generate_weeks
from otc.services import compute_capture, ingest_file, normalize_capture

FIRST_WEEK = date(2025, 10, 6)


def computed_weeks(directory: Path, weeks: int = 3) -> list[Capture]:
    """``weeks`` T1 weeks from ``FIRST_WEEK`` on, 400 rows each, as current captures."""
    paths = generate_weeks(
        directory, tier="T1", start_week=FIRST_WEEK, weeks=weeks, rows=400, seed=7, ats=False
    )
    captures = []
    for offset, path in enumerate(paths):
        week = date.fromordinal(FIRST_WEEK.toordinal() + 7 * offset)
        result = ingest_file(path, tier="T1", week=week, ats=False)
        normalize_capture(result.capture_id)
        compute_capture(result.capture_id)
        captures.append(Capture.objects.get(pk=result.capture_id))
    return captures
