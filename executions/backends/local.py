"""The embedded default: runs executions in this process, right after the commit."""

from __future__ import annotations

import logging
import threading
import uuid

from django.db import connections

from executions.backends.base import ExecutionBackend
from executions.models import Execution
from executions.runner import run_pipeline
from spine.time import utc_now

logger = logging.getLogger(__name__)


class LocalBackend(ExecutionBackend):
    """Runs each execution in-process: inline now, or on a timer when it must wait."""

    name = "local"
    runs_inline = True
    hand_offs_die_with_process = True

    def __init__(self) -> None:
        self._timers: dict[uuid.UUID, threading.Timer] = {}
        self._lock = threading.Lock()

    def submit(self, execution: Execution) -> None:
        delay = (execution.run_after - utc_now()).total_seconds() if execution.run_after else 0
        if delay <= 0:
            run_pipeline(execution.pk)
            return
        timer = threading.Timer(delay, self._run_later, args=[execution.pk])
        timer.daemon = True
        with self._lock:
            self._timers[execution.pk] = timer
        timer.start()

    def cancel(self, execution: Execution) -> None:
        with self._lock:
            timer = self._timers.pop(execution.pk, None)
        if timer is not None:
            timer.cancel()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait for scheduled runs to finish (commands and tests); False on timeout."""
        deadline = None if timeout is None else utc_now().timestamp() + timeout
        while True:
            with self._lock:
                timers = list(self._timers.values())
            if not timers:
                return True
            for timer in timers:
                remaining = None if deadline is None else deadline - utc_now().timestamp()
                if remaining is not None and remaining <= 0:
                    return False
                timer.join(remaining)

    def _run_later(self, execution_id: uuid.UUID) -> None:
        try:
            run_pipeline(execution_id)
        except Exception:
            logger.exception("scheduled local run of execution %s failed", execution_id)
        finally:
            with self._lock:
                if self._timers.get(execution_id) is threading.current_thread():
                    del self._timers[execution_id]
            connections.close_all()
