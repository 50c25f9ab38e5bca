"""``otc partitions list|detach``: the per-capture partitions of normalized volume
(PostgreSQL only; SQLite keeps one plain table)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from otc.services import partitions
from otc.weeks import reporting_week
from spine import cli

NAME = "partitions"
HELP = "List the partitions of normalized volume, or detach (and drop) those of old weeks."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(
        dest="action", metavar="ACTION", required=True, parser_class=cli.SpineCommandParser
    )
    listing = actions.add_parser("list", help="one line per capture table, newest week first")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    detach = actions.add_parser(
        "detach",
        help="detach the partitions of weeks before WEEK (kept as tables unless --drop)",
    )
    detach.add_argument("--before", required=True, metavar="WEEK", help="any date of a week")
    detach.add_argument("--drop", action="store_true", help="drop the detached tables too")
    parser.epilog = "Exit codes: 0 done, 1 not on PostgreSQL, 2 bad input."


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    if options["action"] == "detach":
        try:
            before = reporting_week(options["before"])
        except ValueError as exc:
            raise cli.bad_input(f"--before: {exc}") from None
    try:
        if options["action"] == "list":
            _list(command, as_json=options["json"])
        else:
            _detach(command, before, drop=options["drop"])
    except partitions.PartitionsUnsupported as exc:
        raise CommandError(str(exc), returncode=cli.EXIT_FAILED) from None


def _list(command: BaseCommand, *, as_json: bool) -> None:
    found = partitions.list_partitions()
    if as_json:
        rows = [
            {
                **vars(p),
                "week": p.week.isoformat() if p.week else None,
            }
            for p in found
        ]
        command.stdout.write(json.dumps(rows, indent=2))
        return
    total = sum(p.bytes for p in found)
    command.stdout.write(f"{len(found)} capture table(s), {total:,} bytes")
    command.stdout.write(
        f"  {'week':<10}  {'capture':>7}  {'tier':<4} {'ats':<7}  {'state':<9}"
        f"  {'capture state':<13}  {'rows':>10}  {'bytes':>13}"
    )
    for p in found:
        kind = "-" if p.ats is None else ("ATS" if p.ats else "non-ATS")
        week = p.week.isoformat() if p.week else "-"
        command.stdout.write(
            f"  {week:<10}  {p.capture_id:>7}  {p.tier:<4} {kind:<7}  {p.state:<9}"
            f"  {p.capture_state:<13}  {p.rows:>10,}  {p.bytes:>13,}"
        )


def _detach(command: BaseCommand, before: Any, *, drop: bool) -> None:
    with transaction.atomic():
        done = partitions.detach_before(before, drop=drop)
    verb = "detached and dropped" if drop else "detached (tables kept)"
    command.stdout.write(
        f"{len(done)} partition(s) of weeks before {before.isoformat()} {verb}"
        + (": " + ", ".join(p.table for p in done) if done else "")
    )
