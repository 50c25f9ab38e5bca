"""A backend that runs nothing: it records what it was given, for tests."""

from __future__ import annotations

import uuid

from executions.backends.base import ExecutionBackend
from executions.models import Execution


class StubBackend(ExecutionBackend):
    """Records submissions and cancellations; ``fail_with`` simulates a refusing broker."""

    name = "stub"

    def __init__(self) -> None:
        self.submitted: list[uuid.UUID] = []
        self.cancelled: list[uuid.UUID] = []
        self.fail_with: Exception | None = None

    def submit(self, execution: Execution) -> None:
        if self.fail_with is not None:
            raise self.fail_with
        self.submitted.append(execution.pk)

    def cancel(self, execution: Execution) -> None:
        self.cancelled.append(execution.pk)

    def reset(self) -> None:
        self.submitted.clear()
        self.cancelled.clear()
        self.fail_with = None
