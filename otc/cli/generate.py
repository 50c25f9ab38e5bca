"""``otc generate``: write realistic FINRA-format weekly files (see ``otc.sample.generator``)."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from otc.cli._summary import KIND, add_summary_arguments
from otc.parser import parse_tier
from otc.sample.generator import generate_weeks
from otc.weeks import FIRST_WEEK, current_week, reporting_week, week_start, weeks_between
from spine import cli
from spine.time import parse_date

NAME = "generate"
HELP = (
    "Write N weekly FINRA-format files of the ATS or the non-ATS summary (one per week, "
    "named by tier, summary and week)."
)

#: The newest generated week defaults to this many weeks ago (FINRA's publication lag).
_DEFAULT_LAG_WEEKS = 4


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _ratio(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {value}")
    return value


def _tier(text: str) -> str:
    try:
        return parse_tier(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _week(text: str) -> date:
    try:
        return week_start(parse_date(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weeks", type=_positive, default=1, help="number of weeks (1)")
    parser.add_argument("--rows", type=_positive, default=5_000, help="rows per week (5000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--tier", type=_tier, default="T1", help="T1, T2 or OTC (T1)")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    add_summary_arguments(parser, "write")
    parser.add_argument(
        "--start",
        type=_week,
        default=None,
        help=f"first week, any date in it (default: ends {_DEFAULT_LAG_WEEKS} weeks ago)",
    )
    parser.add_argument(
        "--malformed",
        type=_ratio,
        default=0.0,
        metavar="RATIO",
        help="share of rows to make malformed, 0–1 (0)",
    )


def _default_start(weeks: int) -> date:
    """The first of ``weeks`` weeks ending ``_DEFAULT_LAG_WEEKS`` weeks ago."""
    span = _DEFAULT_LAG_WEEKS + weeks - 1
    if span >= weeks_between(FIRST_WEEK, current_week()):
        raise cli.bad_input(
            f"--weeks {weeks} ending {_DEFAULT_LAG_WEEKS} weeks ago would start before "
            f"{FIRST_WEEK}, FINRA's first reporting week"
        )
    return current_week() - timedelta(weeks=span)


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    weeks = options["weeks"]
    if options["start"] is None:
        start = _default_start(weeks)
    else:
        try:
            start = reporting_week(options["start"])
        except ValueError as exc:
            raise cli.bad_input(f"--start: {exc}") from None
    if weeks > weeks_between(start, current_week()):
        raise cli.bad_input(
            f"--weeks {weeks} from {start} would reach past the current week {current_week()}"
        )
    try:
        paths = generate_weeks(
            options["out"],
            tier=options["tier"],
            start_week=start,
            weeks=weeks,
            rows=options["rows"],
            seed=options["seed"],
            ats=options["ats"],
            malformed_ratio=options["malformed"],
        )
    except ValueError as exc:
        raise cli.bad_input(f"could not generate files: {exc}") from exc
    except OSError as exc:
        raise CommandError(f"could not generate files: {exc}", returncode=cli.EXIT_FAILED) from exc
    for path in paths:
        command.stdout.write(str(path))
    command.stdout.write(
        command.style.SUCCESS(
            f"wrote {len(paths)} {options['tier']} {KIND[options['ats']]} week(s) of "
            f"{options['rows']} rows "
            f"to {options['out']}"
        )
    )
