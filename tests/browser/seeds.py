"""Data the browser tests put in place through the real services before opening a page."""

from __future__ import annotations

from dlq.models import DeadLetter
from executions.dispatcher import dispatch
from executions.models import Execution, ExecutionStatus, TriggerSource


def failed_letter(message: str = "vendor feed timed out") -> tuple[Execution, DeadLetter]:
    """A diag.fail run on the local backend, parked as a dead letter."""
    execution = dispatch("diag.fail", {"message": message}, trigger_source=TriggerSource.CLI)
    execution.refresh_from_db()
    assert execution.status == ExecutionStatus.FAILED
    return execution, DeadLetter.objects.get(execution=execution)
