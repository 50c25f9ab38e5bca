"""The Dispatcher: the single entrypoint that creates executions (invariant 1)."""

from __future__ import annotations

import json
import logging
from contextlib import nullcontext
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction

from executions import fencing, ledger_sql, metrics
from executions.backends import ExecutionBackend, get_backend
from executions.models import Execution, ExecutionEvent, ExecutionStatus, TriggerSource
from executions.registry import PipelineRegistry, registry
from executions.services import IllegalTransition, record_event, record_events, transition
from spine.context import get_request_id
from spine.text import quote
from spine.time import format_iso, utc_now

logger = logging.getLogger(__name__)


class Dispatcher:
    """Creates executions and hands them to a backend (by default the configured one)."""

    def __init__(
        self, backend: ExecutionBackend | None = None, pipelines: PipelineRegistry = registry
    ) -> None:
        self._backend = backend
        self.pipelines = pipelines

    @property
    def backend(self) -> ExecutionBackend:
        return self._backend if self._backend is not None else get_backend()

    def dispatch(
        self,
        pipeline: str,
        params: dict[str, Any] | None = None,
        *,
        trigger_source: str,
        parent: Execution | None = None,
        request_id: str | None = None,
        lane: str | None = None,
        attempt: int | None = None,
        delay_seconds: float | None = None,
    ) -> Execution:
        """Validate, record and submit one execution; return it.

        Raises ``UnknownPipeline`` or ``InvalidParams`` (nothing written) for a bad
        request, ``ValueError`` for an unknown trigger source or lane. ``delay_seconds``
        holds the execution back that long (retry backoff).
        """
        spec = self.pipelines.get(pipeline)
        canonical = spec.validate(params)
        if trigger_source not in TriggerSource.values:
            raise ValueError(
                f"unknown trigger source {quote(trigger_source)}; use one of "
                f"{', '.join(TriggerSource.values)}"
            )
        lane = lane or spec.lane
        if lane not in settings.EXECUTION_LANES:
            raise ValueError(
                f"unknown lane {quote(lane)}; use one of {', '.join(settings.EXECUTION_LANES)}"
            )
        if attempt is None:
            attempt = parent.attempt + 1 if parent and trigger_source == TriggerSource.RETRY else 1
        if request_id is None:
            request_id = get_request_id() or (parent.request_id if parent else "") or ""
        run_after = utc_now() + timedelta(seconds=delay_seconds) if delay_seconds else None
        handed: list[Execution] = []
        now = utc_now()
        # Created already queued, with its created and queued events, in one commit: the
        # hand-off follows the commit, and a refusal turns it back to pending.
        execution = Execution(
            pipeline=spec.name,
            params=canonical,
            status=ExecutionStatus.QUEUED,
            lane=lane,
            trigger_source=trigger_source,
            parent=parent,
            request_id=request_id,
            attempt=attempt,
            lock_key=spec.lock_key_for(canonical) or "",
            run_after=run_after,
            created_at=now,
            queued_at=now,
            submissions=1,
        )
        created = {
            "pipeline": spec.name,
            "params": canonical,
            "trigger_source": trigger_source,
            "lane": lane,
            "attempt": attempt,
            "parent": str(parent.pk) if parent else None,
            "run_after": format_iso(run_after) if run_after else None,
        }
        queued = {"from": ExecutionStatus.PENDING, "to": ExecutionStatus.QUEUED}
        queued.update(reason="dispatch", backend=self.backend.name)
        events = [("created", created), ("queued", queued)]
        # Dispatched by a running handler (a backfill's children): fenced to its claim.
        fenced = fencing.current() is not None
        with transaction.atomic() if fenced or not ledger_sql.available() else nullcontext():
            if ledger_sql.available():
                _insert_with_events(execution, events, now)
            else:
                execution.save(force_insert=True)
                record_events(execution, events, timestamp=now)
            transaction.on_commit(lambda: handed.append(self.hand_to_backend(execution)))
            fencing.fence()
        metrics.SUBMITTED.labels(pipeline=spec.name, trigger_source=trigger_source).inc()
        if handed and self.backend.runs_inline:
            execution.refresh_from_db()
        return execution

    def submit(self, execution: Execution, *, reason: str = "dispatch") -> Execution:
        """Hand a pending execution to the backend; on refusal it stays pending.

        Safe to call for an execution someone else already submitted or cancelled:
        the status machine refuses the second move and nothing happens.
        """
        try:
            execution = transition(
                execution,
                ExecutionStatus.QUEUED,
                data={"reason": reason, "backend": self.backend.name},
                expect={"submissions": execution.submissions},
                submissions=execution.submissions + 1,
            )
        except IllegalTransition as exc:
            logger.info("execution %s not submitted: %s", execution.pk, exc)
            return execution
        return self.hand_to_backend(execution)

    def hand_to_backend(self, execution: Execution) -> Execution:
        """Give a queued execution to the backend; if it refuses, back to pending."""
        try:
            self.backend.submit(execution)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
            logger.warning(
                "backend %s refused execution %s; it stays pending for the sweeper: %s",
                self.backend.name,
                execution.pk,
                error,
            )
            metrics.SUBMIT_FAILURES.labels(pipeline=execution.pipeline).inc()
            data = {"backend": self.backend.name, "error": error, "retry": "sweeper"}
            try:
                execution = transition(
                    execution,
                    ExecutionStatus.PENDING,
                    event_type="submit_failed",
                    data=data,
                    expect={"submissions": execution.submissions},
                )
            except IllegalTransition:
                record_event(execution, "submit_failed", data)
        return execution

    def resubmit(
        self,
        execution: Execution,
        *,
        reason: str,
        run_after: datetime | None = None,
        **data: Any,
    ) -> Execution:
        """Publish a queued execution again as a new hand-off (lock wait, lost message).

        Only the caller that still sees the submission count it read wins, so two
        sweepers cannot both publish the same execution.
        """
        submissions = execution.submissions
        with transaction.atomic():
            updated = Execution.objects.filter(
                pk=execution.pk, status=ExecutionStatus.QUEUED, submissions=submissions
            ).update(submissions=submissions + 1, run_after=run_after)
            if not updated:
                logger.info("execution %s changed; not resubmitted (%s)", execution.pk, reason)
                return execution
            execution.submissions = submissions + 1
            execution.run_after = run_after
            record_event(
                execution,
                "resubmitted",
                {
                    "reason": reason,
                    "backend": self.backend.name,
                    "submission": execution.submissions,
                    "run_after": format_iso(run_after) if run_after else None,
                    **data,
                },
            )
        return self.hand_to_backend(execution)

    def cancel(self, execution: Execution, *, by: str = "", reason: str = "") -> Execution:
        """Cancel a pending, queued or running execution.

        The row is cancelled at once (raises ``IllegalTransition`` if it already
        ended); a queued message is withdrawn where the backend can, and a running
        handler is interrupted by its runner within a heartbeat. The runner releases
        any lock when the handler stops.
        """
        previous = execution.status
        execution = transition(
            execution,
            ExecutionStatus.CANCELLED,
            event_type="cancelled",
            data={"by": by, "reason": reason},
            run_after=None,
        )
        metrics.FINISHED.labels(pipeline=execution.pipeline, status=ExecutionStatus.CANCELLED).inc()
        if previous != ExecutionStatus.PENDING:
            transaction.on_commit(lambda: self._withdraw(execution))
        return execution

    def _withdraw(self, execution: Execution) -> None:
        try:
            self.backend.cancel(execution)
        except Exception:
            logger.warning("backend could not withdraw execution %s", execution.pk, exc_info=True)


def _insert_with_events(
    execution: Execution, events: list[tuple[str, dict[str, Any]]], timestamp: datetime
) -> None:
    """On PostgreSQL, the row and its first events in one statement (one round trip)."""
    qn = connection.ops.quote_name
    fields = Execution._meta.concrete_fields
    values = [f.get_db_prep_save(f.pre_save(execution, True), connection) for f in fields]
    rows = ", ".join(["(%s, %s, %s::jsonb)"] * len(events))
    sql = f"""
        WITH created AS (
            INSERT INTO {qn(Execution._meta.db_table)} ({", ".join(qn(f.column) for f in fields)})
            VALUES ({", ".join(["%s"] * len(fields))})
            RETURNING id
        )
        INSERT INTO {qn(ExecutionEvent._meta.db_table)} (execution_id, type, timestamp, data)
        SELECT created.id, ev.type, %s, ev.data FROM created, (VALUES {rows}) AS ev(n, type, data)
        ORDER BY ev.n
    """  # noqa: S608 - identifiers come from the models, values are parameters
    params: list[Any] = [*values, timestamp]
    for n, (type_, data) in enumerate(events):
        params += [n, type_, json.dumps(data, cls=DjangoJSONEncoder)]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
    execution._state.adding = False
    execution._state.db = connection.alias


default_dispatcher = Dispatcher()


def dispatch(
    pipeline: str,
    params: dict[str, Any] | None = None,
    *,
    trigger_source: str,
    parent: Execution | None = None,
    request_id: str | None = None,
    lane: str | None = None,
    attempt: int | None = None,
    delay_seconds: float | None = None,
) -> Execution:
    """Create and submit an execution through the default Dispatcher."""
    return default_dispatcher.dispatch(
        pipeline,
        params,
        trigger_source=trigger_source,
        parent=parent,
        request_id=request_id,
        lane=lane,
        attempt=attempt,
        delay_seconds=delay_seconds,
    )


def cancel(execution: Execution, *, by: str = "", reason: str = "") -> Execution:
    """Cancel an execution through the default Dispatcher."""
    return default_dispatcher.cancel(execution, by=by, reason=reason)
