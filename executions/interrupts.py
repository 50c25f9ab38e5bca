"""Stopping a running handler: the exceptions raised inside it and how they get there.

A handler is stopped by an exception raised in the thread that runs it. The
exceptions derive from ``BaseException`` so a handler's ``except Exception`` cleanup
cannot swallow a time limit or a cancellation (``finally`` blocks still run).

They arrive two ways: cooperatively, when the handler calls
``RunContext.raise_if_cancelled()``; or asynchronously, from the runner's supervisor
thread through CPython's ``PyThreadState_SetAsyncExc``, which raises in the target
thread at its next bytecode boundary. The asynchronous way needs no signals, so it
works in any thread and under test runners that own ``SIGALRM``; it cannot interrupt
a call blocked inside C (a socket read) until that call returns, which is why the
runner also records the outcome itself after a grace period.
"""

from __future__ import annotations

import ctypes


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


def bound(kind: type[ExecutionInterrupted], reason: str, execution_id: str) -> type:
    """A subclass of ``kind`` carrying the reason: async delivery takes a class, not an
    instance, and nested local runs must tell whose limit fired."""
    return type(kind.__name__, (kind,), {"reason": reason, "execution_id": execution_id})


def raise_in_thread(thread_id: int, exc_type: type[BaseException] | None) -> bool:
    """Schedule ``exc_type`` in the thread ``thread_id`` (None clears a pending one)."""
    obj = ctypes.py_object(exc_type) if exc_type is not None else None
    changed = ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(thread_id), obj)
    return changed == 1
