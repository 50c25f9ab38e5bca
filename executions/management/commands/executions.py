"""``manage.py executions list|show|cancel|sweep|reap``: the ledger from a shell."""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from executions import cli as execution_cli
from executions import recovery, selectors
from executions.dispatcher import cancel
from executions.models import Execution, ExecutionStatus, TriggerSource
from executions.services import IllegalTransition
from spine import cli
from spine.text import quote
from spine.time import format_iso, parse_iso


class Command(cli.OperatorCommand):
    help = (
        "Inspect and act on executions: list recent ones, show one with its event "
        "history, cancel one, or run the sweeper/reaper once in this process."
    )

    epilog = (
        "examples:\n"
        "  executions list --status failed --since 2025-12-01 --limit 20\n"
        "  executions show 3f2a...  (a full id or an unambiguous prefix)\n"
        "  executions cancel 3f2a... --reason 'wrong week'\n"
        "  executions sweep   (re-submit pending executions now; works without beat)\n\n"
        "Exit codes: 0 done, 1 the action failed (e.g. already finished), 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="subcommand", metavar="SUBCOMMAND", required=True)

        ls = sub.add_parser("list", help="Recent executions, newest first.")
        ls.add_argument("--status", action="append", choices=ExecutionStatus.values)
        ls.add_argument("--pipeline", help="Exact pipeline name.")
        ls.add_argument("--lane", choices=list(settings.EXECUTION_LANES))
        ls.add_argument("--trigger", choices=TriggerSource.values)
        ls.add_argument("--since", metavar="ISO", help="Created at or after this time.")
        ls.add_argument("--parent", metavar="ID", help="Children of this execution.")
        ls.add_argument("--limit", type=int, default=25, help="At most this many (25).")
        ls.add_argument("--json", action="store_true", help="Print JSON.")

        show = sub.add_parser("show", help="One execution with its event history.")
        show.add_argument("id", help="Execution id, or an unambiguous prefix of it.")
        show.add_argument("--json", action="store_true", help="Print JSON.")

        stop = sub.add_parser("cancel", help="Cancel a pending, queued or running execution.")
        stop.add_argument("id", help="Execution id, or an unambiguous prefix of it.")
        stop.add_argument("--reason", default="", help="Why; recorded in its history.")
        stop.add_argument("--json", action="store_true", help="Print JSON.")

        for name, text in (
            ("sweep", "Hand pending executions to the backend again (the sweeper), once."),
            ("reap", "Settle running executions whose heartbeat stopped (the reaper), once."),
        ):
            one = sub.add_parser(name, help=text)
            one.add_argument("--json", action="store_true", help="Print JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        getattr(self, f"do_{options['subcommand']}")(options)

    # -- subcommands ----------------------------------------------------------------------

    def do_list(self, options: dict[str, Any]) -> None:
        if options["limit"] < 1:
            raise cli.bad_input("--limit must be at least 1")
        qs = selectors.execution_list()
        if options["status"]:
            qs = qs.filter(status__in=options["status"])
        for field, key in (
            ("pipeline", "pipeline"),
            ("lane", "lane"),
            ("trigger_source", "trigger"),
        ):
            if options[key]:
                qs = qs.filter(**{field: options[key]})
        if options["since"]:
            try:
                qs = qs.filter(created_at__gte=parse_iso(options["since"]))
            except ValueError as exc:
                raise cli.bad_input(f"--since: {exc}") from None
        if options["parent"]:
            qs = qs.filter(parent=resolve(options["parent"]))
        rows = list(qs[: options["limit"]])
        if options["json"]:
            self.stdout.write(cli.dumps([execution_cli.execution_dict(e) for e in rows]))
            return
        if not rows:
            self.stdout.write("no executions match")
            return
        self.stdout.write(
            f"{'id':<36}  {'status':<9}  {'pipeline':<22}  {'lane':<11}  {'trigger':<8}  "
            f"{'attempt':>7}  {'duration':>9}  created"
        )
        for e in rows:
            took = f"{e.duration_seconds:.2f}s" if e.duration_seconds is not None else "—"
            self.stdout.write(
                f"{e.pk!s:<36}  {e.status:<9}  {e.pipeline:<22}  {e.lane:<11}  "
                f"{e.trigger_source:<8}  {e.attempt:>7}  {took:>9}  {format_iso(e.created_at)}"
            )

    def do_show(self, options: dict[str, Any]) -> None:
        execution = resolve(options["id"])
        events = list(selectors.execution_events(execution))
        if options["json"]:
            data = execution_cli.execution_dict(execution, full=True)
            data["events"] = [
                {"type": ev.type, "timestamp": format_iso(ev.timestamp), "data": ev.data}
                for ev in events
            ]
            data["children"] = [str(pk) for pk in execution.children.values_list("pk", flat=True)]
            self.stdout.write(cli.dumps(data))
            return
        for key, value in execution_cli.execution_dict(execution, full=True).items():
            if key in ("params", "result"):
                value = cli.dumps(value)
            if key not in ("traceback",) and value not in (None, ""):
                self.stdout.write(f"{key + ':':<17} {value}")
        children = execution_cli.children_summary(execution)
        if children:
            self.stdout.write(f"{'children:':<17} {children}")
        self.stdout.write("events:")
        for ev in events:
            detail = json.dumps(ev.data, sort_keys=True, default=str) if ev.data else ""
            self.stdout.write(f"  {format_iso(ev.timestamp)}  {ev.type:<20} {detail}")
        if execution.traceback:
            self.stdout.write("traceback:\n" + execution.traceback)

    def do_cancel(self, options: dict[str, Any]) -> None:
        execution = resolve(options["id"])
        if execution.is_terminal:
            raise CommandError(
                f"execution {execution.pk} is {execution.status}; only pending, queued or "
                "running executions can be cancelled",
                returncode=cli.EXIT_FAILED,
            )
        try:
            execution = cancel(execution, by="cli", reason=options["reason"])
        except IllegalTransition as exc:
            raise CommandError(str(exc), returncode=cli.EXIT_FAILED) from exc
        if options["json"]:
            self.stdout.write(cli.dumps(execution_cli.execution_dict(execution)))
        else:
            self.stdout.write(self.style.SUCCESS(f"cancelled {execution_cli.one_line(execution)}"))

    def do_sweep(self, options: dict[str, Any]) -> None:
        self._report("swept", recovery.sweep_pending_executions(), options["json"])

    def do_reap(self, options: dict[str, Any]) -> None:
        self._report("reaped", len(recovery.reap_stale_executions()), options["json"])

    def _report(self, verb: str, count: int, as_json: bool) -> None:
        if as_json:
            self.stdout.write(cli.dumps({verb: count}))
        else:
            self.stdout.write(f"{verb} {count} execution(s)")


def resolve(text: str) -> Execution:
    """An execution by full id or by an unambiguous prefix (as shown in lists)."""
    text = text.strip()
    try:
        return Execution.objects.get(pk=uuid.UUID(text))
    except ValueError:
        pass
    except Execution.DoesNotExist:
        raise cli.bad_input(f"no execution with id {text}") from None
    hexdigits = text.replace("-", "").lower()
    if len(hexdigits) < 6 or any(c not in "0123456789abcdef" for c in hexdigits):
        raise cli.bad_input(
            f"{quote(text)} is not an execution id (give the id or 6+ of its first digits)"
        )
    low = uuid.UUID(hexdigits.ljust(32, "0"))
    high = uuid.UUID(hexdigits.ljust(32, "f"))
    matches = list(Execution.objects.filter(pk__gte=low, pk__lte=high).order_by("pk")[:2])
    if not matches:
        raise cli.bad_input(f"no execution id starts with {text}")
    if len(matches) > 1:
        raise cli.bad_input(f"{text} matches several executions; give more digits")
    return matches[0]
