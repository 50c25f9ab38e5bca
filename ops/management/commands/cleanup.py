"""``manage.py cleanup --older-than 90d [--dry-run]``: apply retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import CommandParser

from executions.retention import DEFAULT_RETENTION
from ops.maintenance import run_cleanup
from spine import cli


class Command(cli.OperatorCommand):
    help = (
        "Delete what is past retention: finished executions and their events older than "
        "--older-than, and resolved dead letters older than --dlq-older-than. Open dead "
        "letters and unfinished executions are never removed."
    )

    epilog = (
        "Ages: 90d, 12h, 30m, 2w (a bare number means days).\n"
        "An execution that still has a dead letter is kept until the letter is purged.\n"
        "Exit codes: 0 done, 2 bad input."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=f"{DEFAULT_RETENTION.days}d",
            metavar="AGE",
            help=f"Executions finished longer ago than this ({DEFAULT_RETENTION.days}d).",
        )
        parser.add_argument(
            "--dlq-older-than",
            default=None,
            metavar="AGE",
            help="Dead letters resolved longer ago than this "
            f"(SPINE_DLQ_RETENTION_DAYS, now {settings.SPINE_DLQ_RETENTION_DAYS}d).",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="Count what would go; delete nothing."
        )
        parser.add_argument("--json", action="store_true", help="Print the counts as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = cli.parse_age(options["older_than"])
        dlq_age = options["dlq_older_than"]
        dlq_older_than = (
            cli.parse_age(dlq_age)
            if dlq_age is not None
            else timedelta(days=settings.SPINE_DLQ_RETENTION_DAYS)
        )
        report = run_cleanup(older_than, dlq_older_than, dry_run=options["dry_run"])
        if options["json"]:
            self.stdout.write(cli.dumps(report))
            return
        verb = "would delete" if report["dry_run"] else "deleted"
        letters = report["dead_letters"]
        self.stdout.write(
            f"{verb} {letters['total']} resolved dead letter(s) resolved before "
            f"{report['dead_letters_cutoff']} (replayed {letters['replayed']}, "
            f"resolved {letters['resolved']}, discarded {letters['discarded']})"
        )
        self.stdout.write(
            f"{verb} {report['executions']} execution(s) and {report['events']} event(s) "
            f"finished before {report['executions_cutoff']}"
        )
        if report["kept_for_dead_letters"]:
            self.stdout.write(
                f"kept {report['kept_for_dead_letters']} execution(s) past retention that "
                "still have a dead letter"
            )
