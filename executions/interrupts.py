"""Stopping a running handler: the exceptions raised inside it and how they get there."""

from __future__ import annotations

import ctypes
import signal
import threading
from collections.abc import Callable
from typing import Any

from billiard.pool import soft_timeout_sighandler


class ExecutionInterrupted(BaseException):
    """Raised inside a handler to stop it; ``execution_id`` names whose run it stops."""

    reason: str = ""
    execution_id: str = ""

    def __init__(self, reason: str | None = None, execution_id: str | None = None) -> None:
        if reason is not None:
            self.reason = reason
        if execution_id is not None:
            self.execution_id = execution_id
        super().__init__(self.reason)


class ExecutionCancelled(ExecutionInterrupted):
    """The execution was cancelled (or is no longer this run's to finish)."""


class PipelineTimeout(ExecutionInterrupted):
    """The run passed its pipeline's ``timeout_seconds``."""


class RunFenced(ExecutionInterrupted):
    """A write of a run that lost its claim was refused before it could commit."""


def bound(kind: type[ExecutionInterrupted], reason: str, execution_id: str) -> type:
    """A subclass of ``kind`` carrying the reason: async delivery takes a class, not an
    instance, and nested local runs must tell whose limit fired."""
    return type(kind.__name__, (kind,), {"reason": reason, "execution_id": execution_id})


def raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Schedule ``exc_type`` in the thread ``thread_id`` (None clears a pending one)."""
    obj = ctypes.py_object(exc_type) if exc_type is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), obj)
    return changed == 1


# Celery's soft time limit arrives as SIGUSR1, whose handler raises an ordinary
# Exception that a handler can catch and return from. Noting that the signal came lets
# the runner record such a run as timed out all the same.
_soft_limit_fired = False


def watch_soft_time_limit() -> None:
    """Start a run: forget any earlier soft limit and make sure the prefork pool's
    soft-limit signal handler notes when it fires (the pool installs it after the
    process starts, so it is wrapped on first use; once wrapped it is no longer the
    pool's own and is left alone). Only the main thread can do this."""
    global _soft_limit_fired
    _soft_limit_fired = False
    signum = getattr(signal, "SIGUSR1", None)
    if signum is None or threading.current_thread() is not threading.main_thread():
        return
    # Only the prefork pool's soft-limit handler: elsewhere SIGUSR1 means something
    # else (the worker's main process dumps its threads' tracebacks on it).
    if signal.getsignal(signum) is soft_timeout_sighandler:
        signal.signal(signum, _noting(soft_timeout_sighandler))


def soft_time_limit_fired() -> bool:
    """Whether the soft time limit fired since the run started."""
    return _soft_limit_fired


def _noting(handler: Callable[[int, Any], Any]) -> Callable[[int, Any], Any]:
    def noting(signum: int, frame: Any) -> Any:
        global _soft_limit_fired
        _soft_limit_fired = True
        return handler(signum, frame)

    return noting
