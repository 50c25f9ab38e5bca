"""``manage.py doctor``: check the installation and print a table (see :mod:`ops.doctor`)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandError, CommandParser

from ops.doctor import run_checks, summary
from spine import cli

MARKS = {"ok": "ok", "warn": "WARN", "fail": "FAIL", "skipped": "-"}


class Command(cli.OperatorCommand):
    help = (
        "Check that Market Spine can do its job here: database reachable and migrated, "
        "Redis answering, a Celery worker answering on every lane, the beat schedule "
        "installed and ticking, disk space for the SQLite default, the pipelines "
        "registered. Prints a table; exits 1 if any check fails."
    )
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    epilog = (
        "Run it with the services' environment. For the Docker stack:\n"
        "  docker compose -f docker/compose.yaml exec web python manage.py doctor\n"
        "Elsewhere set DATABASE_URL / REDIS_URL / EXECUTION_BACKEND as the services have them.\n\n"
        "Statuses: ok, WARN (works, have a look), FAIL (broken), - (does not apply).\n"
        "Exit codes: 0 no check failed, 1 at least one failed."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="Print the results as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        checks = run_checks()
        report = summary(checks)
        if options["json"]:
            self.stdout.write(cli.dumps(report))
        else:
            width = max(len(c.name) for c in checks)
            self.stdout.write(f"{'check':<{width}}  status  {'time':>8}  detail")
            for c in checks:
                mark = MARKS[c.status]
                styled = {
                    "ok": self.style.SUCCESS,
                    "warn": self.style.WARNING,
                    "fail": self.style.ERROR,
                }.get(c.status, str)(f"{mark:<6}")
                self.stdout.write(f"{c.name:<{width}}  {styled}  {c.ms:>6.0f}ms  {c.detail}")
            self.stdout.write(
                f"backend {report['backend']}, database {report['database']}: "
                + (
                    self.style.ERROR(f"{len(report['failed'])} check(s) failed")
                    if report["failed"]
                    else self.style.SUCCESS("all good")
                )
            )
        if report["failed"]:
            raise CommandError(
                f"doctor: failed: {', '.join(report['failed'])}", returncode=cli.EXIT_FAILED
            )
