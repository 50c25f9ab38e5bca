"""``otc lines CAPTURE [--start N] [--count M]``: a capture's raw lines from the archive,
printed as ``N<TAB>text`` (the text as the API serves it)."""

from __future__ import annotations

import argparse
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from otc import selectors
from otc.archive import ArchiveError
from otc.selectors.lines import capture_lines
from spine import cli
from spine.config import MAX_INT

NAME = "lines"
HELP = "Print a capture's raw lines from the archive (verified first) as N<TAB>text."


def _whole(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if not 1 <= value <= MAX_INT:
        raise argparse.ArgumentTypeError(f"must be from 1 to {MAX_INT}, got {value}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("capture", type=_whole, help="the capture's id")
    parser.add_argument("--start", type=_whole, default=1, help="first line; the header is 1")
    parser.add_argument("--count", type=_whole, default=100, help="how many lines (100)")
    parser.epilog = (
        "The text is the line without its line ending (LF or CR LF), decoded as UTF-8.\n"
        "Exit codes: 0 printed, 1 the archive cannot give the bytes, 2 bad input."
    )


def run(command: BaseCommand, options: dict[str, Any]) -> None:
    capture = selectors.captures().filter(pk=options["capture"]).first()
    if capture is None:
        raise cli.bad_input(f"no capture with id {options['capture']}")
    try:
        page = capture_lines(capture, options["start"], options["count"])
    except ArchiveError as exc:
        raise CommandError(str(exc), returncode=cli.EXIT_FAILED) from None
    write = command.stdout.write
    for number, text in page.lines:
        write(f"{number}\t{text}")
    if not page.lines:
        command.stderr.write(
            f"capture {capture.pk} has {page.line_count:,} lines; none from {page.start:,}"
        )
