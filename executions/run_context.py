"""What a pipeline handler receives: its execution, params and a few safe actions."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections
from django.db.backends.base.base import BaseDatabaseWrapper

from executions.interrupts import (
    ExecutionCancelled,
    ExecutionInterrupted,
    RunFenced,
    bound,
    raise_in_thread,
)
from executions.models import Execution, ExecutionEvent, ExecutionStatus
from executions.registry import Pipeline
from executions.services import record_event
from spine.time import utc_now

# How often raise_if_cancelled() may ask the database, at most.
CANCEL_CHECK_SECONDS = 1.0


class RunContext:
    """Handed to a pipeline handler by the runner; the handler's only way to the ledger."""

    def __init__(
        self, execution: Execution, pipeline: Pipeline, run_token: uuid.UUID, deadline: float
    ) -> None:
        self.execution = execution
        self.pipeline = pipeline
        self.params: dict[str, Any] = {}
        self.run_token = run_token
        #: ``time.monotonic()`` value at which the pipeline's time limit is reached.
        self.deadline = deadline
        self._stop_reason: str | None = None
        self._stop_kind: type[ExecutionInterrupted] = ExecutionCancelled
        self._last_check = time.monotonic()
        self._guard = threading.Lock()
        self._handler_thread: int | None = None
        self._interrupt_sent = False
        self._connection: BaseDatabaseWrapper | None = None
        #: Set once a check found the execution no longer this run's.
        self.claim_lost = False
        #: Why a write of this run was refused (it lost its claim), once one was.
        self.fenced: str | None = None

    @property
    def execution_id(self) -> uuid.UUID:
        return self.execution.pk

    @property
    def stop_requested(self) -> bool:
        return self._stop_reason is not None

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    def remaining_seconds(self) -> float:
        """Seconds left before the time limit."""
        return max(0.0, self.deadline - time.monotonic())

    def event(self, type: str, **data: Any) -> ExecutionEvent:
        """Append a progress note to the execution's history."""
        self._raise_if_stopped()
        return record_event(self.execution, type, data)

    def heartbeat(self) -> None:
        """Tell the reaper this run is alive; raise if the execution was cancelled.

        The runner already beats from a background thread; a handler calls this at
        natural checkpoints of long work.
        """
        self.beat()
        self._raise_if_stopped()

    def raise_if_cancelled(self) -> None:
        """Raise :class:`ExecutionCancelled` if the execution should stop now."""
        if (
            self._stop_reason is None
            and time.monotonic() - self._last_check >= CANCEL_CHECK_SECONDS
        ):
            self.check_ownership()
        self._raise_if_stopped()

    # --- used by the runner and its supervisor -----------------------------------

    def beat(self) -> bool:
        """Stamp the heartbeat if this run still owns the execution; False if it does not."""
        owned = Execution.objects.filter(
            pk=self.execution.pk, status=ExecutionStatus.RUNNING, run_token=self.run_token
        ).update(heartbeat_at=utc_now())
        return bool(owned) or self.check_ownership()

    def check_ownership(self) -> bool:
        """Read the row; note why this run must stop if it no longer owns it."""
        self._last_check = time.monotonic()
        row = (
            Execution.objects.filter(pk=self.execution.pk)
            .values_list("status", "run_token")
            .first()
        )
        if row is None:
            return True  # not visible from here (an uncommitted test row); nothing to act on
        status, token = row
        if status == ExecutionStatus.RUNNING and token == self.run_token:
            return True
        self.claim_lost = True
        if status == ExecutionStatus.CANCELLED:
            self.request_stop("the execution was cancelled")
        else:
            self.request_stop(f"the execution is {status} and no longer this run's")
        return False

    def fence(self) -> None:
        """Lock the execution row; raise :class:`RunFenced` unless this run owns it.

        Called by :func:`executions.fencing.fence` inside a write transaction, whose
        commit the row lock then protects: nobody can take the claim before it.
        """
        row = (
            Execution.objects.select_for_update(no_key=True)
            .filter(pk=self.execution.pk)
            .values_list("status", "run_token")
            .first()
        )
        if row is not None and row == (ExecutionStatus.RUNNING, self.run_token):
            return
        if row is None:
            reason = "the execution no longer exists"
        elif row[0] == ExecutionStatus.CANCELLED:
            reason = "the execution was cancelled"
        else:
            reason = f"the execution is {row[0]} and no longer this run's"
        self.claim_lost = True
        self.note_fenced(reason)
        self.request_stop(reason)
        raise RunFenced(f"write refused: {reason}", str(self.execution.pk))

    def note_fenced(self, reason: str) -> None:
        """Remember that a write of this run was (or is being) rolled back: it lost its
        claim (first reason wins)."""
        if self.fenced is None:
            self.fenced = reason

    def in_transaction(self) -> bool:
        """Whether the handler's thread is inside a database transaction right now."""
        connection = self._connection
        return connection is not None and connection.in_atomic_block

    def request_stop(
        self, reason: str, kind: type[ExecutionInterrupted] = ExecutionCancelled
    ) -> None:
        """Ask the handler to stop at its next checkpoint (first reason wins)."""
        if self._stop_reason is None:
            self._stop_reason = reason
            self._stop_kind = kind

    def interrupt(self, kind: type[ExecutionInterrupted], reason: str) -> bool:
        """Raise ``kind`` inside the handler now, once, if the handler is still running."""
        self.request_stop(reason, kind)
        with self._guard:
            if self._handler_thread is None or self._interrupt_sent:
                return False
            self._interrupt_sent = True
            return raise_in_thread(
                self._handler_thread, bound(kind, reason, str(self.execution.pk))
            )

    @contextmanager
    def handler_running(self) -> Iterator[None]:
        """Mark the span in which interrupts may be delivered to the calling thread."""
        with self._guard:
            self._handler_thread = threading.get_ident()
            self._connection = connections[DEFAULT_DB_ALIAS]
        try:
            yield
        finally:
            with self._guard:
                thread, self._handler_thread = self._handler_thread, None
                self._connection = None
                if thread is not None and self._interrupt_sent:
                    raise_in_thread(thread, None)  # drop one that had not fired yet

    def _raise_if_stopped(self) -> None:
        if self._stop_reason is not None:
            raise self._stop_kind(self._stop_reason, str(self.execution.pk))
