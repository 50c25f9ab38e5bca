"""``otc sync``: dispatch ``otc.sync`` and follow its children with a progress bar."""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from executions import cli
from executions.dispatcher import cancel
from executions.models import TERMINAL_STATUSES, Execution, ExecutionStatus
from otc.selectors.sync import SyncProgress
from spine.cli import EXIT_FAILED
from spine.time import utc_now

NAME = "sync"
HELP = "Fetch every week FINRA publishes that the archive lacks or holds an older version of."

PIPELINE = "otc.sync"
POLL_SECONDS = 0.5
BAR_WIDTH = 30
#: Without a terminal, a progress line at most this often (and whenever a child ends).
PLAIN_EVERY_SECONDS = 10.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="TIER",
        help="T1, T2 or OTC (OTCE accepted); repeatable; default all three",
    )
    kinds = parser.add_mutually_exclusive_group()
    kinds.add_argument(
        "--ats", dest="kinds", action="store_const", const="ats", help="ATS summaries only"
    )
    kinds.add_argument(
        "--non-ats",
        dest="kinds",
        action="store_const",
        const="non_ats",
        help="non-ATS OTC summaries only",
    )
    kinds.add_argument(
        "--all-summaries",
        dest="kinds",
        action="store_const",
        const="all",
        help="ATS and non-ATS summaries (the default)",
    )
    parser.add_argument(
        "--since",
        metavar="WEEK",
        help="oldest week to fetch (any date in it); default the oldest FINRA serves",
    )
    parser.add_argument("--dry-run", action="store_true", help="list what would be fetched")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=None,
        help="fetches dispatched per transaction (default 50)",
    )
    parser.add_argument(
        "--no-wait", action="store_true", help="dispatch and return, without following"
    )
    parser.epilog = (
        "Exit codes: 0 in sync (or dispatched with --no-wait), 1 the sync or a fetch "
        "failed or was stopped, 2 bad input."
    )


def params_from(options: dict[str, Any]) -> dict[str, Any]:
    params: dict[str, Any] = {
        "tiers": options["tier"],
        "kinds": options["kinds"] or "all",
        "dry_run": options["dry_run"],
    }
    if options["since"] is not None:
        params["since"] = options["since"]
    if options["batch_size"] is not None:
        params["batch_size"] = options["batch_size"]
    return params


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    write = command.stdout.write
    parent = cli.submit(PIPELINE, params_from(options))
    write(f"{PIPELINE} {parent.pk}: asking FINRA which weeks it publishes")
    if not parent.is_terminal and options["no_wait"]:
        write(f"{parent.status}; follow it in the admin or with: executions show {parent.pk}")
        return
    try:
        parent = cli.follow(parent)
        if parent.status != ExecutionStatus.SUCCEEDED:
            cli.finish(parent, command.stdout, command.style)
        result = parent.result or {}
        write(plan_text(result))
        if result.get("dry_run"):
            for item in result.get("items", []):
                write(f"  {item_text(item)}")
            if result.get("items_not_listed"):
                write(f"  ... and {result['items_not_listed']:,} more")
            return
        if not result.get("dispatched"):
            write(command.style.SUCCESS("nothing new: the archive holds every week FINRA serves"))
            return
        progress = follow_children(parent, command)
    except KeyboardInterrupt:
        stopped = stop(parent)
        raise CommandError(
            f"stopped: {stopped} fetches not started were cancelled; the ones running "
            "finish. Run otc sync again to fetch what is left.",
            returncode=EXIT_FAILED,
        ) from None
    write(done_text(progress))
    if progress.failed or progress.cancelled:
        raise CommandError(
            f"{progress.failed} fetches failed, {progress.cancelled} cancelled "
            f"(children of {parent.pk}; failed ones are in the dead-letter queue)",
            returncode=EXIT_FAILED,
        )


def plan_text(result: dict[str, Any]) -> str:
    published = sum(result.get("published", {}).values())
    text = (
        f"FINRA publishes {published:,} (dataset, week)s; to fetch: {result.get('to_fetch', 0):,}"
        f" ({result.get('missing', 0):,} missing, {result.get('changed', 0):,} changed)"
    )
    if result.get("in_flight"):
        text += f", {len(result['in_flight']):,} already being fetched"
    gone = sum(result.get("no_longer_served", {}).values())
    if gone:
        text += f"; {gone:,} weeks held are no longer served by FINRA (kept)"
    return text


def item_text(item: dict[str, Any]) -> str:
    kind = "ATS" if item["ats"] else "non-ATS"
    text = f"{item['tier']:<3} {kind:<7} {item['week']}  {item['reason']}"
    if item["reason"] == "changed":
        text += f" (FINRA {item['finra_last_update']}, held {item['held_last_update']})"
    return text


def follow_children(parent: Execution, command: BaseCommand) -> SyncProgress:
    """Poll the children until all have ended, drawing a bar (TTY) or printing lines."""
    tty = _isatty(command)
    progress = SyncProgress()
    # The pace counts from the sync's start: on the local backend every child has run
    # before this is reached.
    started = parent.started_at or parent.created_at
    last_line = 0.0
    shown_done = -1
    while True:
        progress.update(parent, (utc_now() - started).total_seconds())
        finished = progress.total and progress.done >= progress.total
        if tty:
            command.stdout.write("\r" + bar_text(progress), ending="")
            command.stdout.flush()
        elif (
            finished
            or progress.done != shown_done
            or (time.monotonic() - last_line >= PLAIN_EVERY_SECONDS)
        ):
            command.stdout.write(line_text(progress))
            shown_done, last_line = progress.done, time.monotonic()
        if finished:
            if tty:
                command.stdout.write("")
            return progress
        time.sleep(POLL_SECONDS)


def _isatty(command: BaseCommand) -> bool:
    stream = getattr(command.stdout, "_out", sys.stdout)
    return bool(getattr(stream, "isatty", lambda: False)())


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "--:--"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def line_text(p: SyncProgress) -> str:
    """One plain progress line: weeks done/total, rows/s, ETA, failures."""
    return (
        f"  {p.done}/{p.total} weeks, {p.rows:,} rows ({p.rows_per_second:,.0f} rows/s), "
        f"ETA {_clock(p.eta_seconds)}, {p.failed} failed"
    )


def bar_text(p: SyncProgress) -> str:
    filled = BAR_WIDTH * p.done // p.total if p.total else 0
    return f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}]" + line_text(p)


def done_text(p: SyncProgress) -> str:
    fetched = p.done - p.failed - p.cancelled
    return (
        f"synced: {fetched} weeks fetched ({p.unchanged} unchanged), {p.failed} failed, "
        f"{p.rows:,} rows in {p.elapsed_seconds:.1f}s ({p.rows_per_second:,.0f} rows/s)"
    )


def stop(parent: Execution) -> int:
    """Cancel the sync (no further batches) and its children not started yet."""
    parent.refresh_from_db()
    if parent.status not in TERMINAL_STATUSES:
        cancel(parent, by="otc sync", reason="stopped from the shell")
    waiting = Execution.objects.filter(
        parent=parent, status__in=[ExecutionStatus.PENDING, ExecutionStatus.QUEUED]
    )
    count = 0
    for child in waiting:
        cancel(child, by="otc sync", reason="sync stopped from the shell")
        count += 1
    return count
