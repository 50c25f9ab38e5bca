"""Polling helpers for tests that wait on other threads or processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from executions.models import Execution

# A deadline only bounds a wait that is failing anyway: generous, so that a slow or busy
# machine never turns a passing wait into a failure.
DEADLINE = 120


def wait_for(
    predicate: Callable[[], Any],
    *,
    timeout: float = DEADLINE,
    interval: float = 0.1,
    what: str = "",
) -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")
        time.sleep(interval)


def wait_for_status(execution: Execution, *statuses: str, timeout: float = DEADLINE) -> Execution:
    """Reload ``execution`` until its status is one of ``statuses``."""

    def reached() -> Execution | None:
        execution.refresh_from_db()
        return execution if execution.status in statuses else None

    return wait_for(reached, timeout=timeout, what=f"{execution.pk} to be {statuses}")


def event_types(execution: Execution) -> list[str]:
    return list(execution.events.order_by("timestamp", "id").values_list("type", flat=True))
