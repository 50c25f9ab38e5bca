"""Dead letters hold bounded error and traceback text, whatever the execution carried."""

from __future__ import annotations

import logging
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from dlq import services
from dlq.models import DeadLetter
from executions.models import Execution, ExecutionStatus
from spine.text import STORED_TEXT_CHARS, bounded

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.embedded]

HUGE = 10 * (1 << 20)


def test_park_bounds_the_error_and_traceback_it_copies(run_failure) -> None:
    execution, letter = run_failure()
    letter.delete()
    # As an older row, or a writer outside the ledger service, might have left them.
    Execution.objects.filter(pk=execution.pk).update(error="e" * HUGE, traceback="t" * HUGE)
    execution.refresh_from_db()

    parked = services.park(execution, failure_kind="error")

    parked.refresh_from_db()
    assert parked.error == bounded("e" * HUGE) and len(parked.error) <= STORED_TEXT_CHARS
    assert parked.traceback == bounded("t" * HUGE) and len(parked.traceback) <= STORED_TEXT_CHARS
    assert "… [truncated " in parked.error


def test_a_10_mb_single_line_file_fails_with_short_bounded_text_everywhere(
    local_backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "one-line.psv"
    path.write_bytes(b"x" * HUGE)
    with caplog.at_level(logging.INFO), pytest.raises(CommandError) as caught:
        call_command(
            "otc", "ingest", str(path), "--tier", "OTC", "--week", "2025-12-15", "--ats",
            stdout=StringIO(), stderr=StringIO(),
        )  # fmt: skip
    assert caught.value.returncode == 1

    execution = Execution.objects.get()
    assert execution.status == ExecutionStatus.FAILED
    assert execution.error.startswith("FileFormatError: line 1: header row is longer than")
    assert len(execution.error) < 300
    assert len(execution.traceback) < 10_000 and "x" * 100 not in execution.traceback
    letter = DeadLetter.objects.get(execution=execution)
    assert (letter.error, letter.traceback) == (execution.error, execution.traceback)
    assert len(str(caught.value)) < 1000
    assert caplog.records and all(len(r.getMessage()) < 1000 for r in caplog.records)
    assert any(execution.error in r.getMessage() for r in caplog.records)
