"""Per-request and per-execution context that logs and services can read.

Context variables survive threads started with ``contextvars.copy_context`` and are
isolated between concurrent requests, so a log line deep inside a service can name
the request and execution it serves without passing them around.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
execution_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "execution_id", default=None
)


def get_request_id() -> str | None:
    """The correlation id of the request (or execution) being served, if any."""
    return request_id_var.get()


def get_execution_id() -> str | None:
    """The id of the execution being run, if any."""
    return execution_id_var.get()


@contextmanager
def bind(*, request_id: str | None = None, execution_id: str | None = None) -> Iterator[None]:
    """Set the request and/or execution id for the duration of a block."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    if request_id is not None:
        tokens.append((request_id_var, request_id_var.set(request_id)))
    if execution_id is not None:
        tokens.append((execution_id_var, execution_id_var.set(execution_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)
