"""A stand-in for the dead-letter queue's ``park``, for the failure hand-off seam.

Used via ``SPINE_FAILURE_HANDLER`` in the test process and in worker subprocesses: it
notes the hand-off in the execution's own history, where either side can see it.
"""

from __future__ import annotations

from executions.models import Execution
from executions.services import record_event

HANDLER = "tests.executions.fakes.record_failure"
EVENT = "test.handed_off"


def record_failure(execution: Execution, *, failure_kind: str) -> None:
    record_event(execution, EVENT, {"failure_kind": failure_kind, "status": execution.status})


def explode(execution: Execution, *, failure_kind: str) -> None:
    raise RuntimeError("the failure handler is broken")
