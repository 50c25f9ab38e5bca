"""Writes to the execution ledger: status transitions, events and the failure hand-off."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils.module_loading import import_string

from executions import ledger_sql
from executions.models import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATUSES,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
)
from spine.text import bounded
from spine.time import utc_now

logger = logging.getLogger(__name__)

FAILURE_KINDS = ("error", "timeout", "lock", "worker_lost")
# Status → the statuses it may be reached from.
_SOURCES = {
    target: [source for source, targets in ALLOWED_TRANSITIONS.items() if target in targets]
    for target in ALLOWED_TRANSITIONS
}


class IllegalTransition(Exception):
    """The status machine does not allow this move from the execution's current status."""

    def __init__(self, execution_id: object, from_status: str, to_status: str) -> None:
        self.execution_id = execution_id
        self.from_status = from_status
        self.to_status = to_status
        super().__init__(f"execution {execution_id} cannot go from {from_status} to {to_status}")


class StaleExecution(IllegalTransition):
    """The row changed since the caller read it (another runner, the reaper, a cancel)."""

    def __init__(self, execution_id: object, from_status: str, to_status: str, field: str) -> None:
        super().__init__(execution_id, from_status, to_status)
        self.field = field
        self.args = (f"execution {execution_id} changed under the caller ({field} differs)",)


def transition(
    execution: Execution,
    to_status: str,
    *,
    event_type: str | None = None,
    data: Mapping[str, Any] | None = None,
    expect: Mapping[str, Any] | None = None,
    locked: bool = False,
    **fields: Any,
) -> Execution:
    """Move ``execution`` to ``to_status``, update ``fields`` and append the event.

    ``expect`` lists field values the locked row must still have (for example the
    ``run_token`` of the run that means to write its outcome); a mismatch raises
    :class:`StaleExecution`, so a runner that lost its execution cannot overwrite it.
    ``locked=True`` says the caller already read ``execution`` with
    ``select_for_update`` in the enclosing transaction, which saves reading it again.
    The caller's instance is updated in place and also returned. On PostgreSQL the
    whole transition is one statement (:mod:`executions.ledger_sql`).
    """
    for name in fields:
        Execution._meta.get_field(name)  # an unknown field is a programming error
    for name in _TEXT_FIELDS:
        if isinstance(fields.get(name), str):
            fields[name] = bounded(fields[name])
    data = _bounded_data(data)
    if locked and not transaction.get_connection().in_atomic_block:
        raise ValueError("locked=True needs the caller's transaction that holds the row lock")
    now = utc_now()
    changes = {"status": to_status, **_timestamps(to_status, now), **fields}
    if not locked and ledger_sql.available():
        moved = ledger_sql.transition(
            execution.pk,
            from_statuses=_SOURCES[to_status],
            to_status=to_status,
            changes=changes,
            expect=expect or {},
            event_type=event_type or to_status,
            data=data or {},
            timestamp=now,
        )
        if moved:
            for name, value in changes.items():
                setattr(execution, name, value)
            return execution
        # Nothing moved: the ORM path below finds out why and raises it (or wins a race).
    # Inside the caller's locking transaction a savepoint would only cost round trips.
    with transaction.atomic(savepoint=not locked):
        row = execution if locked else Execution.objects.select_for_update().get(pk=execution.pk)
        if to_status not in ALLOWED_TRANSITIONS[row.status]:
            raise IllegalTransition(row.pk, row.status, to_status)
        for name, value in (expect or {}).items():
            if getattr(row, name) != value:
                raise StaleExecution(row.pk, row.status, to_status, name)
        from_status = row.status
        for name, value in changes.items():
            setattr(row, name, value)
        row.save(update_fields=list(changes))
        ExecutionEvent.objects.create(
            execution=row,
            type=event_type or to_status,
            timestamp=now,
            data={"from": from_status, "to": to_status, **(data or {})},
        )
    for name in changes:
        setattr(execution, name, getattr(row, name))
    return row


_TEXT_FIELDS = ("error", "traceback")


def _bounded_data(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """Event data with its error text (if any) bounded like the row's."""
    result = dict(data or {})
    for name in _TEXT_FIELDS:
        if isinstance(result.get(name), str):
            result[name] = bounded(result[name])
    return result


def _timestamps(to_status: str, now: Any) -> dict[str, Any]:
    if to_status == ExecutionStatus.QUEUED:
        return {"queued_at": now}
    if to_status == ExecutionStatus.RUNNING:
        return {"started_at": now, "heartbeat_at": now, "finished_at": None}
    if to_status in TERMINAL_STATUSES:
        return {"finished_at": now}
    return {}


def record_event(
    execution: Execution, type: str, data: Mapping[str, Any] | None = None
) -> ExecutionEvent:
    """Append a note to an execution's history without changing its status."""
    return ExecutionEvent.objects.create(
        execution_id=execution.pk, type=type, timestamp=utc_now(), data=_bounded_data(data)
    )


def record_events(
    execution: Execution,
    events: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    timestamp: datetime | None = None,
) -> list[ExecutionEvent]:
    """Append several notes in one statement (they share one timestamp, in order)."""
    when = timestamp or utc_now()
    return ExecutionEvent.objects.bulk_create(
        ExecutionEvent(
            execution_id=execution.pk, type=type, timestamp=when, data=_bounded_data(data)
        )
        for type, data in events
    )


def hand_off_failure(execution: Execution, failure_kind: str) -> None:
    """Give a failed, timed-out, lock-refused or worker-lost execution to the DLQ.

    The handler is the callable named by ``SPINE_FAILURE_HANDLER`` (the dead-letter
    queue's ``park``), called as ``handler(execution, failure_kind=...)``. Call this
    after the failure is committed. A handler that cannot be imported or that raises
    is logged and noted in the execution's history; it never breaks the caller, the
    ledger already says what happened.
    """
    if failure_kind not in FAILURE_KINDS:
        raise ValueError(f"failure_kind {failure_kind!r} is not one of {FAILURE_KINDS}")
    path = getattr(settings, "SPINE_FAILURE_HANDLER", "")
    if not path:
        logger.warning("no SPINE_FAILURE_HANDLER set; execution %s not handed off", execution.pk)
        return
    try:
        handler = import_string(path)
    except ImportError as exc:
        logger.error(
            "failure handler %s cannot be imported; execution %s (%s) was not handed off",
            path,
            execution.pk,
            failure_kind,
            exc_info=True,
        )
        _note_handoff_failure(execution, path, failure_kind, exc)
        return
    try:
        handler(execution, failure_kind=failure_kind)
    except Exception as exc:
        logger.exception(
            "failure handler %s raised for execution %s (%s)", path, execution.pk, failure_kind
        )
        _note_handoff_failure(execution, path, failure_kind, exc)


def _note_handoff_failure(
    execution: Execution, path: str, failure_kind: str, exc: Exception
) -> None:
    try:
        record_event(
            execution,
            "failure_handoff_failed",
            {
                "handler": path,
                "failure_kind": failure_kind,
                "error": f"{type(exc).__name__}: {exc}",
            },
        )
    except Exception:
        logger.exception("could not note the failed hand-off of execution %s", execution.pk)
