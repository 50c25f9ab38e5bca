"""Fenced writes: a run that lost its claim cannot commit."""

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
