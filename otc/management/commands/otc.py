"""``python manage.py otc <subcommand>``: OTC data operations for operators.

The subcommands live in :mod:`otc.cli`, one module each; this command only builds the
argument parser from them and dispatches.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from otc.cli import discover
from spine.cli import SpineCommand, SpineCommandParser


class Command(SpineCommand):
    help = "FINRA OTC weekly data: generate sample files and more (see 'otc <subcommand> -h')."

    def add_arguments(self, parser: CommandParser) -> None:
        subparsers = parser.add_subparsers(
            dest="subcommand",
            metavar="SUBCOMMAND",
            title="subcommands",
            required=True,
            parser_class=SpineCommandParser,
        )
        for name, module in discover().items():
            sub = subparsers.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(sub)

    def handle(self, *args: Any, **options: Any) -> None:
        discover()[options["subcommand"]].run(self, options)
