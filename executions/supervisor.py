"""The thread that watches a run: heartbeats, cancellation and (off Celery) the time limit.

While a handler runs, its supervisor beats the heartbeat every
``SPINE_HEARTBEAT_SECONDS`` so the reaper can tell a live run from a lost one. A beat
that finds the execution cancelled (or reaped) asks the handler to stop, and one
heartbeat later interrupts it. When the runner enforces the time limit itself (every
backend but Celery, whose soft/hard limits do it there), the supervisor interrupts the
handler at the limit and, if it still has not returned after
``SPINE_TIME_LIMIT_GRACE_SECONDS``, records ``timed_out`` on its behalf.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from django.db import connections

from executions.interrupts import ExecutionCancelled, PipelineTimeout
from executions.run_context import RunContext
from spine import context

logger = logging.getLogger(__name__)


class Supervisor(threading.Thread):
    """Runs beside one handler call; ``stop()`` when the handler returns."""

    def __init__(
        self,
        ctx: RunContext,
        *,
        heartbeat_seconds: float,
        enforce_timeout: bool,
        grace_seconds: float,
        on_abandon: Callable[[RunContext], None],
    ) -> None:
        super().__init__(name=f"supervisor-{ctx.execution_id}", daemon=True)
        self.ctx = ctx
        self.heartbeat_seconds = heartbeat_seconds
        self.enforce_timeout = enforce_timeout
        self.grace_seconds = grace_seconds
        self.on_abandon = on_abandon
        self._stopped = threading.Event()
        self._timed_out = False
        self._abandoned = False
        self._stop_seen_at: float | None = None

    def stop(self) -> None:
        self._stopped.set()
        self.join()

    def run(self) -> None:
        with context.bind(execution_id=str(self.ctx.execution_id)):
            try:
                self._loop()
            finally:
                connections.close_all()

    def _loop(self) -> None:
        next_beat = time.monotonic() + self.heartbeat_seconds
        while not self._stopped.wait(max(0.0, self._next_wake(next_beat) - time.monotonic())):
            now = time.monotonic()
            if self.enforce_timeout:
                self._enforce_limit(now)
            if now >= next_beat:
                next_beat = now + self.heartbeat_seconds
                self._beat()
            if self.ctx.stop_requested and self._stop_seen_at is None:
                self._stop_seen_at = now
                logger.info("execution %s: %s", self.ctx.execution_id, self.ctx.stop_reason)
            elif (
                self._stop_seen_at is not None
                and now - self._stop_seen_at >= self.heartbeat_seconds
            ):
                # The handler had a heartbeat to stop at a checkpoint; now interrupt it.
                self.ctx.interrupt(ExecutionCancelled, self.ctx.stop_reason or "stopped")

    def _next_wake(self, next_beat: float) -> float:
        wake = next_beat
        if self.enforce_timeout and not self._timed_out:
            wake = min(wake, self.ctx.deadline)
        elif self.enforce_timeout and not self._abandoned:
            wake = min(wake, self.ctx.deadline + self.grace_seconds)
        return wake

    def _enforce_limit(self, now: float) -> None:
        limit = self.ctx.pipeline.timeout_seconds
        if not self._timed_out and now >= self.ctx.deadline:
            self._timed_out = True
            self.ctx.interrupt(PipelineTimeout, f"exceeded its time limit of {limit}s")
        elif (
            self._timed_out
            and not self._abandoned
            and now >= self.ctx.deadline + self.grace_seconds
        ):
            self._abandoned = True
            logger.error(
                "execution %s did not stop %ss after its %ss time limit; recording timed_out",
                self.ctx.execution_id,
                self.grace_seconds,
                limit,
            )
            self.on_abandon(self.ctx)

    def _beat(self) -> None:
        try:
            self.ctx.beat()
        except Exception:
            # A missed beat is survivable (the reaper allows several); a dead thread is not.
            logger.warning("heartbeat of execution %s failed", self.ctx.execution_id, exc_info=True)
