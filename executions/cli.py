"""Shared pieces of the operator commands that submit and follow executions.

``dispatch``, ``executions``, ``backfill``, ``otc ingest`` and ``demo`` all parse
``key=value`` params, print an execution as a line, a block or JSON, and optionally
follow a run to its end with a progress line. Keeping that here means every command
reports the same way and exits with the same codes:

* ``0`` — done (and, when following, the execution succeeded);
* ``1`` — the execution failed, timed out or was cancelled, or a check failed;
* ``2`` — bad input (unknown pipeline, bad params, bad option values): nothing ran.
"""

from __future__ import annotations

import json
import time
from argparse import RawDescriptionHelpFormatter
from collections.abc import Callable, Iterable
from datetime import timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser, OutputWrapper
from django.db import InterfaceError, OperationalError
from django.db.models import Count

from executions.models import TERMINAL_STATUSES, Execution, ExecutionStatus, TriggerSource
from executions.registry import InvalidParams, UnknownPipeline
from spine.logging import reported_by_command
from spine.text import quote
from spine.time import format_iso

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
POLL_SECONDS = 0.5


class SpineCommandParser(CommandParser):
    """Django's command parser, with a refused command line exiting 2 (bad input) when
    the command is called from code too, as it does from a shell."""

    def error(self, message: str) -> NoReturn:
        if self.called_from_command_line:
            super().error(message)  # argparse: usage and the message on stderr, exit 2
        raise CommandError(f"Error: {message}", returncode=EXIT_BAD_INPUT)


class SpineCommand(BaseCommand):
    """The base of every Market Spine command: bad arguments are bad input (exit 2); a
    database that cannot be reached is a failure (exit 1) in one line, not a traceback
    (``--traceback`` shows it)."""

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except (OperationalError, InterfaceError) as exc:
            if options.get("traceback"):
                raise
            detail = " ".join(str(exc).split())[:500]
            raise CommandError(f"database error: {detail}", returncode=EXIT_FAILED) from exc

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        # Django builds a CommandParser; commands with subcommands pass
        # parser_class=SpineCommandParser to add_subparsers for theirs.
        parser.__class__ = SpineCommandParser
        return parser


class OperatorCommand(SpineCommand):
    """A command whose ``--help`` ends with :attr:`epilog` as written (examples, exit
    codes), instead of argparse re-flowing it into one paragraph."""

    epilog = ""

    def get_epilog(self) -> str:
        return self.epilog

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> CommandParser:
        parser = super().create_parser(prog_name, subcommand, **kwargs)
        parser.formatter_class = RawDescriptionHelpFormatter
        parser.epilog = self.get_epilog()
        return parser


def bad_input(message: str) -> CommandError:
    """A CommandError for input that was refused before anything ran (exit code 2)."""
    return CommandError(message, returncode=EXIT_BAD_INPUT)


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
    from executions.dispatcher import dispatch

    try:
        with reported_by_command(pipeline):
            return dispatch(pipeline, params, trigger_source=TriggerSource.CLI, lane=lane)
    except (UnknownPipeline, InvalidParams, ValueError) as exc:
        raise refused(exc) from exc


def parse_params(pairs: Iterable[str]) -> dict[str, Any]:
    """``["seconds=2", "lock=a", "tags=[1,2]"]`` → params.

    A value that reads as JSON (numbers, ``true``/``false``/``null``, lists, objects,
    quoted strings) is taken as JSON; anything else is a plain string, so
    ``week=2025-12-15`` needs no quoting. The pipeline's serializer then validates.
    """
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise bad_input(f"parameter {quote(pair)} is not key=value")
        if key in params:
            raise bad_input(f"parameter {quote(key)} is given twice")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


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


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True, default=str)


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


def progress_text(execution: Execution, elapsed: float) -> str:
    """One progress line: status, elapsed time, last event, children so far."""
    status, last, children = progress_state(execution)
    text = f"{execution.pipeline} {str(execution.pk)[:8]}: {status}, {elapsed:.1f}s"
    if last and last != status:
        text += f", last event {last}"
    if children:
        done = sum(n for state, n in children.items() if state in TERMINAL_STATUSES)
        text += f", children {done}/{sum(children.values())} done"
        failed = children.get(ExecutionStatus.FAILED, 0) + children.get(
            ExecutionStatus.TIMED_OUT, 0
        )
        if failed:
            text += f" ({failed} failed)"
    return text


def follow(
    execution: Execution,
    stdout: OutputWrapper,
    *,
    timeout: float | None = None,
    quiet: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> Execution:
    """Wait for ``execution`` to end, printing a progress line whenever it changes.

    Returns the reloaded execution; raises ``CommandError`` (exit 1) if ``timeout``
    seconds pass first (the execution keeps running; only the waiting stops).
    """
    started = time.monotonic()
    shown: tuple[Any, ...] | None = None
    while True:
        execution.refresh_from_db()
        elapsed = time.monotonic() - started
        state = progress_state(execution)
        if not quiet and state != shown:  # reprint only when more than the clock moved
            stdout.write(progress_text(execution, elapsed))
            shown = state
        if execution.status in TERMINAL_STATUSES:
            return execution
        if timeout is not None and elapsed >= timeout:
            raise CommandError(
                f"stopped waiting after {timeout:g}s; execution {execution.pk} is still "
                f"{execution.status} (follow it with: executions show {execution.pk})",
                returncode=EXIT_FAILED,
            )
        sleep(POLL_SECONDS)


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


_AGE_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_age(text: str) -> timedelta:
    """``90d``, ``12h``, ``30m``, ``2w`` (a bare number means days) → a timedelta."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:] in _AGE_UNITS else "d"
    number = value[:-1] if value[-1:] in _AGE_UNITS else value
    try:
        amount = float(number)
    except ValueError:
        raise bad_input(f"{quote(text)} is not an age; use e.g. 90d, 12h, 30m or 2w") from None
    if amount < 0 or amount != amount or amount == float("inf"):
        raise bad_input(f"{quote(text)}: an age must be a positive, finite amount")
    return timedelta(seconds=amount * _AGE_UNITS[unit])
