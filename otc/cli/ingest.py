"""``otc ingest <file> --tier T --week DATE --ats|--non-ats [--wait]``: run the full ETL
for one file."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from executions import cli as execution_cli
from executions.models import ExecutionStatus, TriggerSource
from executions.registry import InvalidParams
from otc.cli._summary import KIND, add_summary_arguments
from otc.cli.fetch import describe
from otc.services.intake import submit_local_file
from spine import cli
from spine.logging import reported_by_command

NAME = "ingest"
HELP = "Ingest a FINRA weekly file and run its full ETL (dispatches otc.full_etl)."
PIPELINE = "otc.full_etl"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="a FINRA weekly download file (pipe-delimited)")
    parser.add_argument("--tier", required=True, help="T1, T2 or OTC (OTCE accepted)")
    parser.add_argument("--week", required=True, help="any date in the reporting week (YYYY-MM-DD)")
    add_summary_arguments(parser, "the file is")
    parser.add_argument(
        "--wait", action="store_true", help="follow a queued execution until it ends"
    )
    parser.add_argument("--json", action="store_true", help="print the execution as JSON")
    parser.epilog = "Exit codes: 0 succeeded (or queued without --wait), 1 failed, 2 bad input."


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    path: Path = options["file"].expanduser()
    try:
        with reported_by_command(PIPELINE):
            execution = submit_local_file(
                path,
                tier=options["tier"],
                week=options["week"],
                ats=options["ats"],
                trigger_source=TriggerSource.CLI,
                pipeline=PIPELINE,
            )
    except (InvalidParams, ValueError) as exc:
        raise execution_cli.refused(exc) from exc
    except OSError as exc:
        raise cli.bad_input(str(exc)) from exc
    quiet = options["json"]
    if not quiet:
        p = execution.params
        kind = KIND[p["ats"]]
        command.stdout.write(f"{PIPELINE} {p['tier']} {kind} week {p['week']}: {execution.pk}")
    if options["wait"] or execution.is_terminal:
        report = None if quiet else execution_cli.event_lines(command.stdout.write, describe)
        execution = execution_cli.follow(execution, report)
    if quiet:
        command.stdout.write(cli.dumps(execution_cli.execution_dict(execution, full=True)))
        if execution.is_terminal and execution.status != ExecutionStatus.SUCCEEDED:
            raise CommandError(f"{PIPELINE} {execution.status}", returncode=cli.EXIT_FAILED)
        return
    if not execution.is_terminal:
        command.stdout.write(f"{execution.status}; follow it with --wait, or in the admin")
        return
    execution_cli.finish(execution, command.stdout, command.style)
    command.stdout.write(summary(execution.result or {}))


def summary(result: dict[str, Any]) -> str:
    """The closing line: the capture and what became of it (rejects counted after
    normalize, so duplicates are among them)."""
    if result.get("status") == "unchanged":
        return f"unchanged: capture {result['capture_id']} already holds this file"
    ingest = result.get("steps", {}).get("ingest", {})
    rejects = result.get("rejects", ingest.get("rejects", 0))
    line = (
        f"capture {result.get('capture_id')} {result.get('status')}: "
        f"{ingest.get('rows', 0):,} rows, {rejects:,} rejects, "
        f"grade {result.get('grade', '?')}"
    )
    warnings = result.get("warnings") or []
    return line + (f", {len(warnings)} warning(s)" if warnings else "")
