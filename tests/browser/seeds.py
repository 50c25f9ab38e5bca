"""Data the browser tests put in place through the real services before opening a page."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from dlq.models import DeadLetter
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource
from otc.models import Capture
from otc.sample.generator import generate_weeks
from otc.services import compute_capture, ingest_file, normalize_capture

FIRST_WEEK = date(2025, 10, 6)


def seed_weeks(directory: Path, weeks: int = 3) -> list[Capture]:
    """A few consecutive T1 weeks of generated data, ingested and computed."""
    paths = generate_weeks(
        directory, tier="T1", start_week=FIRST_WEEK, weeks=weeks, rows=400, seed=7
    )
    captures = []
    for offset, path in enumerate(paths):
        week = date.fromordinal(FIRST_WEEK.toordinal() + 7 * offset)
        result = ingest_file(path, tier="T1", week=week)
        normalize_capture(result.capture_id)
        compute_capture(result.capture_id)
        captures.append(Capture.objects.get(pk=result.capture_id))
    return captures


def failed_letter(message: str = "vendor feed timed out") -> tuple[Execution, DeadLetter]:
    """A diag.fail run on the local backend, parked as a dead letter."""
    execution = dispatch("diag.fail", {"message": message}, trigger_source=TriggerSource.CLI)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    return execution, DeadLetter.objects.get(execution=execution)
