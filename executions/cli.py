"""Execution helpers for the operator commands: submit, print, follow to the end, finish.

The generic command helpers are in :mod:`spine.cli`."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError, OutputWrapper
from django.db.models import Count

from executions.dispatcher import dispatch
from executions.models import (
    TERMINAL_STATUSES,
    Execution,
    ExecutionEvent,
    ExecutionStatus,
    TriggerSource,
)
from executions.registry import InvalidParams, UnknownPipeline
from spine.cli import EXIT_FAILED, bad_input
from spine.logging import reported_by_command
from spine.time import format_iso

POLL_SECONDS = 0.5
# What follow() calls after each look at the execution: (execution, seconds elapsed).
Report = Callable[[Execution, float], None]


def refused(exc: UnknownPipeline | InvalidParams | ValueError) -> CommandError:
    """The Dispatcher's refusal as a clear bad-input error."""
    if isinstance(exc, InvalidParams):
        lines = [f"invalid params for {exc.pipeline}:"]
        for key, messages in exc.errors.items():
            texts = messages if isinstance(messages, list) else [messages]
            lines.extend(f"  {key}: {text}" for text in texts)
        return bad_input("\n".join(lines))
    return bad_input(str(exc))


def submit(pipeline: str, params: dict[str, Any], *, lane: str | None = None) -> Execution:
    """Dispatch from a shell (trigger: cli); a refusal by the Dispatcher is bad input.
    The command reports how the execution ended, so the runner's log line on it is
    left out (on the local backend it runs before this returns)."""
    try:
        with reported_by_command(pipeline):
            return dispatch(pipeline, params, trigger_source=TriggerSource.CLI, lane=lane)
    except (UnknownPipeline, InvalidParams, ValueError) as exc:
        raise refused(exc) from exc


def execution_dict(execution: Execution, *, full: bool = False) -> dict[str, Any]:
    """A JSON-safe view of an execution (``--json`` output)."""

    def iso(value: Any) -> str | None:
        return format_iso(value) if value else None

    data: dict[str, Any] = {
        "id": str(execution.pk),
        "pipeline": execution.pipeline,
        "status": execution.status,
        "params": execution.params,
        "lane": execution.lane,
        "trigger_source": execution.trigger_source,
        "parent": str(execution.parent_id) if execution.parent_id else None,
        "attempt": execution.attempt,
        "created_at": iso(execution.created_at),
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
        "duration_seconds": execution.duration_seconds,
        "error": execution.error,
    }
    if full:
        data.update(
            {
                "request_id": execution.request_id,
                "lock_key": execution.lock_key,
                "queued_at": iso(execution.queued_at),
                "heartbeat_at": iso(execution.heartbeat_at),
                "result": execution.result,
                "traceback": execution.traceback,
            }
        )
    return data


def one_line(execution: Execution) -> str:
    """``<id>  <status>  <pipeline>`` — what a dispatching command prints."""
    return f"{execution.pk}  {execution.status:<9}  {execution.pipeline}"


def children_summary(execution: Execution) -> dict[str, int]:
    """Child executions per status (backfills and composite pipelines)."""
    rows = execution.children.order_by().values_list("status").annotate(n=Count("id"))
    return {status: n for status, n in rows}


def progress_state(execution: Execution) -> tuple[str, str | None, dict[str, int]]:
    """What a progress line shows, apart from the clock: status, last event, children."""
    last = execution.events.order_by("-timestamp", "-id").values_list("type", flat=True).first()
    return execution.status, last, children_summary(execution)


def progress_text(
    execution: Execution, elapsed: float, state: tuple[str, str | None, dict[str, int]]
) -> str:
    """One progress line: status, elapsed time, last event, children so far."""
    status, last, children = state
    text = f"{execution.pipeline} {str(execution.pk)[:8]}: {status}, {elapsed:.1f}s"
    if last and last != status:
        text += f", last event {last}"
    if children:
        done = sum(n for child, n in children.items() if child in TERMINAL_STATUSES)
        text += f", children {done}/{sum(children.values())} done"
        failed = children.get(ExecutionStatus.FAILED, 0) + children.get(
            ExecutionStatus.TIMED_OUT, 0
        )
        if failed:
            text += f" ({failed} failed)"
    return text


def follow(
    execution: Execution,
    report: Report | None = None,
    *,
    timeout: float | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Execution:
    """Wait for ``execution`` to end, calling ``report`` after each look at it.

    Returns the reloaded execution; raises ``CommandError`` (exit 1) if ``timeout``
    seconds pass first (the execution keeps running; only the waiting stops).
    """
    started = time.monotonic()
    while True:
        execution.refresh_from_db()
        elapsed = time.monotonic() - started
        if report is not None:
            report(execution, elapsed)
        if execution.status in TERMINAL_STATUSES:
            return execution
        if timeout is not None and elapsed >= timeout:
            raise CommandError(
                f"stopped waiting after {timeout:g}s; execution {execution.pk} is still "
                f"{execution.status} (follow it with: executions show {execution.pk})",
                returncode=EXIT_FAILED,
            )
        time.sleep(poll_seconds)


def progress_lines(stdout: OutputWrapper) -> Report:
    """A report printing a progress line whenever more than the clock moved."""
    shown: tuple[Any, ...] | None = None

    def report(execution: Execution, elapsed: float) -> None:
        nonlocal shown
        state = progress_state(execution)
        if state != shown:
            stdout.write(progress_text(execution, elapsed, state))
            shown = state

    return report


def event_lines(
    write: Callable[[str], None], describe: Callable[[ExecutionEvent], str | None]
) -> Report:
    """A report printing ``describe(event)`` for each new event (None: not shown)."""
    seen = 0

    def report(execution: Execution, elapsed: float) -> None:
        nonlocal seen
        for event in execution.events.filter(id__gt=seen).order_by("id"):
            seen = event.id
            line = describe(event)
            if line:
                write(line)

    return report


def finish(execution: Execution, stdout: OutputWrapper, style: Any) -> None:
    """Report a finished execution; raise (exit 1) unless it succeeded."""
    duration = execution.duration_seconds
    took = f" in {duration:.2f}s" if duration is not None else ""
    if execution.status == ExecutionStatus.SUCCEEDED:
        stdout.write(style.SUCCESS(f"{execution.pipeline} {execution.pk} succeeded{took}"))
        return
    detail = f": {execution.error}" if execution.error else ""
    raise CommandError(
        f"{execution.pipeline} {execution.pk} {execution.status}{took}{detail}",
        returncode=EXIT_FAILED,
    )
