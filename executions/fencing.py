"""Fenced writes: a run that lost its claim cannot commit.

The runner binds each handler call to its :class:`RunContext`; a service that writes
calls :func:`fence` as the last statement of its ``transaction.atomic()`` block. The
fence locks the execution row and compares its status and run token with the run's:
if the execution was reaped, cancelled or handed to another run meanwhile it raises
:class:`RunFenced`, the block rolls back and the runner records a ``fenced`` event.
The row lock is held until the commit, so nobody can take the claim in between.
Outside a run (a shell command, a test calling a service) :func:`fence` does nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from django.db import transaction

from executions.interrupts import RunFenced

if TYPE_CHECKING:
    from executions.run_context import RunContext

__all__ = ["RunFenced", "bind", "current", "fence"]

_current: ContextVar[RunContext | None] = ContextVar("spine_fence", default=None)


@contextmanager
def bind(ctx: RunContext | None) -> Iterator[None]:
    """Fence the writes made in this block to ``ctx``'s claim (None: unfenced)."""
    token = _current.set(ctx)
    try:
        yield
    finally:
        _current.reset(token)


def current() -> RunContext | None:
    """The run whose claim this thread's writes are fenced to, if any."""
    return _current.get()


def fence() -> None:
    """Refuse to let the enclosing transaction commit unless this run still owns its
    execution; call it last in each write transaction of a handler."""
    ctx = _current.get()
    if ctx is None:
        return
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("fence() belongs at the end of a transaction.atomic() block")
    ctx.fence()
