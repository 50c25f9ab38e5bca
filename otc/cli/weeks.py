"""``otc weeks``: the weeks FINRA has published for a tier, and which Market Spine holds.

Asks FINRA's ``weeklyDownloadDetails`` (newest first) and marks each week for which
a current capture exists, and the weeks held that FINRA no longer serves.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from otc.finra import FinraError
from otc.parser import parse_tier
from otc.services.fetch import published_weeks
from spine import cli

NAME = "weeks"
HELP = (
    "List the weeks FINRA has published for a tier, newest first, marking those held "
    "(and held weeks FINRA no longer serves)."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tier", required=True, help="T1, T2 or OTC (OTCE accepted)")
    parser.add_argument(
        "--non-ats", action="store_true", help="non-ATS OTC volume (default: ATS volume)"
    )
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.epilog = "Exit codes: 0 listed, 1 FINRA could not be asked, 2 bad input."


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    try:
        tier = parse_tier(options["tier"])
    except ValueError as exc:
        raise cli.bad_input(f"--tier: {exc}") from None
    ats = not options["non_ats"]
    try:
        rows = published_weeks(tier, ats=ats)
    except FinraError as exc:
        raise CommandError(
            f"could not list FINRA's weeks: {exc}", returncode=cli.EXIT_FAILED
        ) from None
    if options["json"]:
        command.stdout.write(json.dumps({"tier": tier, "ats": ats, "weeks": rows}, indent=2))
        return
    kind = "ATS" if ats else "non-ATS"
    held = sum(row["held"] for row in rows)
    served = sum(row["served_by_finra"] for row in rows)
    gone = len(rows) - served
    extra = f", {gone} held weeks FINRA no longer serves" if gone else ""
    command.stdout.write(
        f"{tier} {kind}: {served} weeks published by FINRA, {held} held{extra} (newest first)"
    )
    for row in rows:
        mark = f"held (capture {row['capture_id']})" if row["held"] else "-"
        if not row["served_by_finra"]:
            seen = row["finra_last_seen"]
            mark += ", no longer served by FINRA" + (f" (last seen {seen})" if seen else "")
        command.stdout.write(f"  {row['week']}  {mark}")
