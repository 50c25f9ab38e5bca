"""Watching running handlers: heartbeats, cancellation and (off Celery) the time limit."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections, connections

from executions.interrupts import ExecutionCancelled, PipelineTimeout
from executions.run_context import RunContext
from spine import context

logger = logging.getLogger(__name__)


class Watch:
    """One running handler under supervision; ``stop()`` when the handler returns."""

    def __init__(
        self,
        supervisor: Supervisor,
        ctx: RunContext,
        *,
        heartbeat_seconds: float,
        enforce_timeout: bool,
        grace_seconds: float,
        on_abandon: Callable[[RunContext], None],
    ) -> None:
        self.supervisor = supervisor
        self.ctx = ctx
        self.heartbeat_seconds = heartbeat_seconds
        self.enforce_timeout = enforce_timeout
        self.grace_seconds = grace_seconds
        self.on_abandon = on_abandon
        self.next_beat = time.monotonic() + heartbeat_seconds
        self.active = True
        self.lock = threading.Lock()
        self._timed_out = False
        self._abandoned = False
        self._stop_seen_at: float | None = None
        self._interrupted = False

    def stop(self) -> None:
        with self.lock:  # waits for a tick in progress, so none acts after this
            self.active = False
        self.supervisor.forget(self)

    def next_wake(self) -> float:
        if not self.active:
            return float("inf")
        wake = self.next_beat
        if self._stop_seen_at is not None and not self._interrupted:
            wake = min(wake, self._stop_seen_at + self.heartbeat_seconds)
        if self.enforce_timeout and not self._timed_out:
            wake = min(wake, self.ctx.deadline)
        elif self.enforce_timeout and not self._abandoned:
            wake = min(wake, self.ctx.deadline + self.grace_seconds)
        return wake

    def tick(self, now: float) -> None:
        with self.lock:
            if not self.active:
                return
            with context.bind(execution_id=str(self.ctx.execution_id)):
                self._tick(now)

    def _tick(self, now: float) -> None:
        if self.enforce_timeout:
            self._enforce_limit(now)
        if now >= self.next_beat:
            self.next_beat = now + self.heartbeat_seconds
            self._beat()
        if self.ctx.stop_requested and self._stop_seen_at is None:
            self._stop_seen_at = now
            logger.info("execution %s: %s", self.ctx.execution_id, self.ctx.stop_reason)
        elif (
            self._stop_seen_at is not None
            and not self._interrupted
            and now - self._stop_seen_at >= self.heartbeat_seconds
        ):
            # The handler had a heartbeat to stop at a checkpoint; now interrupt it.
            self._interrupted = True
            reason = self.ctx.stop_reason or "stopped"
            if self.ctx.claim_lost and self.ctx.in_transaction():
                # Its open write can no longer commit (the fence refuses it): fenced.
                self.ctx.note_fenced(reason)
            self.ctx.interrupt(ExecutionCancelled, reason)

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
            close_old_connections()  # drop a connection a database restart broke
            self.ctx.beat()
        except Exception:
            # A missed beat is survivable (the reaper allows several); a dead thread is not.
            logger.warning("heartbeat of execution %s failed", self.ctx.execution_id, exc_info=True)


class Supervisor(threading.Thread):
    """The process's watcher thread; see :func:`supervisor`."""

    def __init__(self) -> None:
        super().__init__(name="execution-supervisor", daemon=True)
        self._changed = threading.Condition()
        self._watches: list[Watch] = []

    def watch(self, ctx: RunContext, **options: object) -> Watch:
        watch = Watch(self, ctx, **options)  # type: ignore[arg-type]
        with self._changed:
            self._watches.append(watch)
            self._changed.notify()
        return watch

    def forget(self, watch: Watch) -> None:
        with self._changed:
            if watch in self._watches:
                self._watches.remove(watch)

    def run(self) -> None:
        while True:
            with self._changed:
                now = time.monotonic()
                due = [w for w in self._watches if w.next_wake() <= now]
                if not due and self._watches:
                    wake = min(w.next_wake() for w in self._watches)
                    self._changed.wait(timeout=wake - now if wake != float("inf") else 0.01)
                    continue
            if not due:
                # Idle: hold no database connection between runs (nor across a test
                # database's teardown).
                connections.close_all()
                with self._changed:
                    if not self._watches:
                        self._changed.wait()
                continue
            for watch in due:
                try:
                    watch.tick(time.monotonic())
                except Exception:
                    logger.exception("supervising execution %s failed", watch.ctx.execution_id)


_supervisor: Supervisor | None = None
_lock = threading.Lock()


def supervisor() -> Supervisor:
    """This process's supervisor thread, started on first use."""
    global _supervisor
    with _lock:
        if _supervisor is None or not _supervisor.is_alive():
            _supervisor = Supervisor()
            _supervisor.start()
        return _supervisor


def _forget_after_fork() -> None:
    global _supervisor, _lock
    _supervisor = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
