"""``manage.py demo``: Market Spine's main job end to end (steps in docs/otc.md, "The demo")."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from dlq.selectors import dead_letter_for_execution
from executions import cli as execution_cli
from executions.models import Execution, ExecutionStatus
from otc.cli._summary import KIND, add_summary_arguments
from otc.parser import parse_tier
from otc.sample.demo import deliver_late, ensure_superuser, plan_weeks, to_inbox
from otc.selectors.report import render, week_report
from otc.weeks import scheduled_week, week_start
from spine import cli
from spine.config import BASE_DIR
from spine.time import parse_date

PIPELINE = "otc.full_etl"


class Command(cli.OperatorCommand):
    help = (
        "Run the main job end to end: generate FINRA weekly files (or take --file), run "
        "each through otc.full_etl via the Dispatcher, park a late file in the dead-letter "
        "queue, and print a summary of the newest week with how to open the admin and "
        "the API docs."
    )

    epilog = (
        "examples:\n"
        "  demo                              generated T1 ATS weeks (the default)\n"
        "  demo --tier OTC --weeks 3 --rows 5000 --non-ats\n"
        "  demo --file finra.psv --tier OTC --week 2025-12-15 --ats\n\n"
        "Nothing in a FINRA file's columns says whether it is the ATS or the non-ATS\n"
        "summary: --file needs --ats or --non-ats. Generated files are ATS unless\n"
        "--non-ats is given, and their names say which (finra_t1_ats_20251215.psv).\n"
        "Pipelines read files from the inbox (SPINE_INBOX_DIR): files generated or given\n"
        "elsewhere are copied into its demo/ directory. With the Celery backend the\n"
        "workers must share the inbox (a shared disk).\n"
        "Exit codes: 0 done, 1 a week failed (other than the deliberate late file),\n"
        "2 bad input or an unmigrated database."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tier", default="T1", help="T1 (default), T2 or OTC.")
        parser.add_argument("--weeks", type=int, default=6, help="Weeks to generate (6).")
        parser.add_argument("--rows", type=int, default=20_000, help="Rows per week (20000).")
        parser.add_argument("--seed", type=int, default=1, help="Generator seed (1).")
        parser.add_argument(
            "--out",
            type=Path,
            help="Where files go (default: demo/ in the inbox, SPINE_INBOX_DIR).",
        )
        parser.add_argument(
            "--file", type=Path, help="Ingest this FINRA file instead of generating."
        )
        parser.add_argument("--week", help="With --file: any date in its reporting week.")
        add_summary_arguments(
            parser, "the file (required with --file) or the generated weeks are", required=False
        )
        parser.add_argument(
            "--no-late-file",
            action="store_true",
            help="Skip the dead-letter step (the late file).",
        )
        parser.add_argument(
            "--no-superuser", action="store_true", help="Do not create the 'admin' user."
        )
        parser.add_argument("--json", action="store_true", help="Print the summary as JSON.")

    # -- the flow ----------------------------------------------------------------------

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        self._require_migrated()
        try:
            tier = parse_tier(options["tier"])
        except ValueError as exc:
            raise cli.bad_input(str(exc)) from None
        if not options["file"] and (options["weeks"] < 1 or options["rows"] < 1):
            raise cli.bad_input("--weeks and --rows must be at least 1")
        say = (lambda text: None) if options["json"] else self.stdout.write
        say(self.style.MIGRATE_HEADING("Market Spine demo"))
        say(f"  database {_database()}, execution backend {settings.EXECUTION_BACKEND}")

        if options["file"]:
            plan = self._file_plan(options, tier)
            late = None
        else:
            if options["ats"] is None:
                options["ats"] = True
            plan, late = self._generate(options, tier, say)

        runs = []
        for week, path in plan:
            execution = self._run(path, tier, week, options["ats"])
            runs.append(execution)
            say(_run_line(execution, week))
        failed = [e for e in runs if e.status != ExecutionStatus.SUCCEEDED]

        letter = None
        if late is not None:
            letter = self._late_file(late, tier, options, say)

        done = [week for (week, _), e in zip(plan, runs, strict=True) if e not in failed]
        report = week_report(tier=tier, week=max(done), ats=options["ats"]) if done else None
        admin = None if options["no_superuser"] else ensure_superuser(debug=settings.DEBUG)
        elapsed = time.monotonic() - started

        if options["json"]:
            self.stdout.write(
                cli.dumps(
                    {
                        "database": _database(),
                        "backend": settings.EXECUTION_BACKEND,
                        "weeks": [execution_cli.execution_dict(e) for e in runs],
                        "report": report.as_dict() if report else None,
                        "dead_letter": letter,
                        "admin": admin,
                        "elapsed_seconds": round(elapsed, 2),
                    }
                )
            )
        else:
            self._print_summary(report, letter, admin, elapsed)
        if failed:
            raise CommandError(
                f"{len(failed)} week(s) failed: "
                + "; ".join(f"{e.pk} {e.status}: {e.error}" for e in failed),
                returncode=cli.EXIT_FAILED,
            )

    def _require_migrated(self) -> None:
        executor = MigrationExecutor(connection)
        if executor.migration_plan(executor.loader.graph.leaf_nodes()):
            raise cli.bad_input("the database is not migrated; run: python manage.py migrate")

    def _file_plan(self, options: dict[str, Any], tier: str) -> list[tuple[date, Path]]:
        path = options["file"].expanduser()
        if not path.is_file():
            raise cli.bad_input(f"no such file: {path}")
        if not options["week"]:
            raise cli.bad_input("--file needs --week (any date in the file's reporting week)")
        if options["ats"] is None:
            raise cli.bad_input(
                "--file needs --ats or --non-ats: nothing in a FINRA file says whether it is "
                "the ATS or the non-ATS (OTC) summary"
            )
        try:
            week = week_start(parse_date(options["week"]))
        except ValueError as exc:
            raise cli.bad_input(f"--week: {exc}") from None
        return [(week, path.resolve())]

    def _generate(
        self, options: dict[str, Any], tier: str, say: Any
    ) -> tuple[list[tuple[date, Path]], tuple[date, Path] | None]:
        weeks, rows = options["weeks"], options["rows"]
        if weeks < 1 or rows < 1:
            raise cli.bad_input("--weeks and --rows must be at least 1")
        plan = plan_weeks(
            tier=tier,
            ats=options["ats"],
            newest=scheduled_week(tier),
            weeks=weeks,
            rows=rows,
            seed=options["seed"],
            out=options["out"],
            late=not options["no_late_file"],
        )
        say(
            f"  generated {len(plan.on_time)} {tier} {KIND[options['ats']]} week(s) of "
            f"{rows:,} rows (seed {options['seed']}) in {plan.out}"
        )
        return plan.on_time, plan.late

    def _run(self, path: Path, tier: str, week: date, ats: bool) -> Execution:
        params = {"path": to_inbox(path), "tier": tier, "week": week.isoformat(), "ats": ats}
        execution = execution_cli.submit(PIPELINE, params)
        return execution_cli.follow(execution)

    def _late_file(
        self, late: tuple[date, Path], tier: str, options: dict[str, Any], say: Any
    ) -> dict[str, Any] | None:
        week, path = late
        say(f"  week {week}: its file has not arrived yet, running it anyway...")
        with _quiet("executions.runner", "dlq.services"):  # the failure is the point here
            execution = self._run(path, tier, week, options["ats"])
        letter = dead_letter_for_execution(execution.pk)
        deliver_late(
            path,
            tier=tier,
            ats=options["ats"],
            week=week,
            rows=options["rows"],
            seed=options["seed"],
        )
        if letter is None:
            say(f"    {execution.status}: no dead letter was parked ({execution.error})")
            return None
        say(
            f"    {execution.status} as expected ({execution.error}) → dead letter #{letter.pk}; "
            "the file has arrived now: replay it from the admin"
        )
        return {
            "id": letter.pk,
            "execution_id": str(execution.pk),
            "week": week.isoformat(),
            "error": execution.error,
            "file": str(path),
        }

    # -- output --------------------------------------------------------------------------

    def _print_summary(
        self,
        report: Any,
        letter: dict[str, Any] | None,
        admin: dict[str, Any] | None,
        elapsed: float,
    ) -> None:
        write = self.stdout.write
        write("")
        if report is None:
            write("No week was computed.")
        else:
            for line in render(report):
                write(line)
        write("")
        write(self.style.SUCCESS(f"Done in {elapsed:.1f}s."))
        write("")
        write("Next: start the web server and open the admin and the API docs")
        write(f"  {_python()} manage.py runserver")
        write("  admin:     http://127.0.0.1:8000/admin/")
        write("  overview:  http://127.0.0.1:8000/admin/operations/  (market-share chart)")
        write("  API docs:  http://127.0.0.1:8000/api/docs/")
        if admin and admin["created"]:
            write(f"  sign in as {admin['username']} / {admin['password']}  (shown once)")
        elif admin and admin["username"]:
            write(
                f"  sign in as {admin['username']} (created by an earlier run; new password: "
                f"{_python()} manage.py changepassword {admin['username']})"
            )
        else:
            write(f"  create a user first: {_python()} manage.py createsuperuser")
        if letter:
            write(
                f"  dead letter #{letter['id']} (week {letter['week']}): Dead letters → "
                f"#{letter['id']} → Replay; or {_python()} manage.py dlq replay {letter['id']}"
            )


def _run_line(execution: Execution, week: date) -> str:
    result = execution.result or {}
    took = f"{execution.duration_seconds:.2f}s" if execution.duration_seconds else "—"
    if execution.status != ExecutionStatus.SUCCEEDED:
        return f"  week {week}  {execution.status}  {took}  {execution.error}"
    ingest = result.get("steps", {}).get("ingest", {})
    what = (
        "unchanged"
        if result.get("status") == "unchanged"
        else f"{ingest.get('rows', 0):,} rows, "
        f"{result.get('rejects', ingest.get('rejects', 0)):,} rejects, "
        f"grade {result.get('grade', '?')}"
    )
    return (
        f"  week {week}  {execution.status}  {took:>6}  capture {result.get('capture_id')} "
        f"{what}  (execution {str(execution.pk)[:8]})"
    )


@contextmanager
def _quiet(*names: str) -> Iterator[None]:
    """Hold back these loggers' warnings for a failure the demo causes on purpose."""
    loggers = [logging.getLogger(name) for name in names]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def _database() -> str:
    db = settings.DATABASES["default"]
    return f"{db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}"


def _python() -> str:
    return ".venv/bin/python" if (BASE_DIR / ".venv").exists() else "python"
