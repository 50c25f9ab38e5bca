"""Helpers every management command shares: base classes, exit codes, params, JSON, ages.

Exit codes: ``0`` done, ``1`` failed (a run, a check, the database), ``2`` bad input
(nothing ran). See docs/operations.md for the commands themselves.
"""

from __future__ import annotations

import json
from argparse import RawDescriptionHelpFormatter
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, NoReturn

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import InterfaceError, OperationalError

from spine.text import quote

EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


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


def dumps(data: Any) -> str:
    """``--json`` output: indented, keys sorted, anything else as its string."""
    return json.dumps(data, indent=2, sort_keys=True, default=str)


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
