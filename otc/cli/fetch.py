"""``otc fetch``: dispatch ``otc.fetch_week`` for one week and (optionally) follow it."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand

from executions import cli
from executions.models import ExecutionEvent

NAME = "fetch"
HELP = "Fetch one week from FINRA's Query API into a capture (dispatches otc.fetch_week)."

PIPELINE = "otc.fetch_week"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tier", required=True, help="T1, T2 or OTC (OTCE accepted)")
    parser.add_argument("--week", required=True, help="any date in the week (YYYY-MM-DD)")
    parser.add_argument(
        "--non-ats", action="store_true", help="non-ATS OTC volume (default: ATS volume)"
    )
    parser.add_argument(
        "--wait", action="store_true", help="follow a queued execution until it ends"
    )
    parser.epilog = "Exit codes: 0 succeeded (or queued without --wait), 1 failed, 2 bad input."


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    params = {"tier": options["tier"], "week": options["week"], "ats": not options["non_ats"]}
    execution = cli.submit(PIPELINE, params)
    p = execution.params
    kind = "ATS" if p["ats"] else "non-ATS"
    command.stdout.write(f"{PIPELINE} {p['tier']} {kind} week {p['week']}: {execution.pk}")
    if not execution.is_terminal and not options["wait"]:
        command.stdout.write(f"{execution.status}; follow it with --wait, or in the admin")
        return
    execution = cli.follow(execution, cli.event_lines(command.stdout.write, describe))
    cli.finish(execution, command.stdout, command.style)
    command.stdout.write(outcome(execution.result or {}))


def describe(event: ExecutionEvent) -> str | None:
    """One line for the events an operator follows; ``None`` for the others."""
    d = event.data
    if event.type == "fetch_progress":
        return f"  page {d['pages']}: {d['rows']:,} rows ({d['rows_per_second']:,.1f} rows/s)"
    if event.type == "step_finished":
        return f"  {d['step']}: {_step_summary(d['step'], d.get('result') or {})}"
    if event.type == "lock_wait":
        return f"  waiting for {d.get('locked_by')} (lock {d.get('key')})"
    return None


def _step_summary(step: str, result: dict[str, Any]) -> str:
    if step == "fetch":
        return f"capture {result['capture_id']} {result['status']}, {result['rejects']} rejects"
    if step == "normalize":
        duplicates = result.get("duplicates", 0)
        extra = f", {duplicates:,} duplicate rows rejected" if duplicates else ""
        return f"{result['rows']:,} normalized rows{extra}"
    if step == "compute":
        return f"grade {result['grade']}"
    if step == "reconcile":
        return result.get("warning") or f"all {result['symbols']:,} symbols match FINRA's totals"
    return str(result.get("status", "done"))


def outcome(result: dict[str, Any]) -> str:
    """The closing line: what was fetched and what became of it."""
    f = result.get("fetch", {})
    pace = (
        f"{f.get('pages', 0)} pages, {f.get('rows', 0):,} rows in "
        f"{f.get('elapsed_seconds', 0):.1f}s ({f.get('rows_per_second', 0):,.1f} rows/s)"
    )
    if result.get("status") == "unchanged":
        return f"unchanged: capture {result['capture_id']} already holds this week ({pace})"
    rejects = result.get("rejects")
    held = f", {rejects:,} rejects" if rejects is not None else ""
    return f"capture {result['capture_id']} {result.get('status')}: {pace}{held}"
