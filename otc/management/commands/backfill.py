"""``manage.py backfill --tier T --from DATE --to DATE --dir DIR --ats|--non-ats``: many
weeks at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from executions import cli as execution_cli
from executions.models import ExecutionStatus
from executions.registry import InvalidParams, registry
from otc.cli._summary import add_summary_arguments
from otc.pipelines.backfill import week_file_name
from otc.services.intake import stage_directory
from otc.weeks import iter_weeks
from spine import cli
from spine.time import parse_date

PIPELINE = "otc.backfill"


class Command(cli.OperatorCommand):
    help = (
        "Run the full ETL for a range of weeks from a directory of FINRA weekly files: "
        "dispatches otc.backfill, which starts one otc.full_etl child execution per "
        "week on the backfill lane (weeks without a file are reported, not guessed)."
    )

    epilog = (
        "example:\n"
        "  otc generate --tier T1 --weeks 8 --ats --out var/weeks\n"
        "  backfill --tier T1 --from 2025-10-06 --to 2025-11-24 --dir var/weeks --ats --wait\n\n"
        "Nothing in a FINRA file's columns says whether it is the ATS or the non-ATS\n"
        "summary: --ats or --non-ats is required and holds for every file of the range.\n"
        "Files are found by --pattern ({tier} = t1/t2/otc, {summary} = ats/non_ats,\n"
        "{week} = YYYYMMDD of the Monday). A directory inside the inbox (SPINE_INBOX_DIR)\n"
        "is read where it is; from any other, the week files are copied into the inbox\n"
        "first.\n"
        "For weeks straight from FINRA's API use 'otc fetch'.\n"
        "Exit codes: 0 done (every child succeeded, with --wait), 1 something failed,\n"
        "2 bad input (nothing was recorded)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tier", required=True, help="T1, T2 or OTC (OTCE accepted).")
        parser.add_argument(
            "--from", dest="start", required=True, metavar="DATE", help="First week (any day)."
        )
        parser.add_argument(
            "--to", dest="end", required=True, metavar="DATE", help="Last week (any day)."
        )
        parser.add_argument(
            "--dir", dest="directory", required=True, type=Path, help="Directory of week files."
        )
        parser.add_argument(
            "--pattern", help="File name per week (default finra_{tier}_{summary}_{week}.psv)."
        )
        add_summary_arguments(parser, "the files are")
        parser.add_argument(
            "--wait", action="store_true", help="Follow the backfill and its children to the end."
        )
        parser.add_argument(
            "--timeout", type=float, metavar="SECONDS", help="With --wait: stop waiting after this."
        )
        parser.add_argument("--json", action="store_true", help="Print the result as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        directory: Path = options["directory"].expanduser()
        if not directory.is_dir():
            raise cli.bad_input(f"no such directory: {directory}")
        params: dict[str, Any] = {
            "tier": options["tier"],
            "start": options["start"],
            "end": options["end"],
            "ats": options["ats"],
            "directory": ".",
        }
        if options["pattern"]:
            params["pattern"] = options["pattern"]
        try:
            canonical = registry.get(PIPELINE).validate(params)
        except InvalidParams as exc:
            raise execution_cli.refused(exc) from exc
        weeks = iter_weeks(parse_date(canonical["start"]), parse_date(canonical["end"]))
        names = [week_file_name(canonical, week) for week in weeks]
        try:
            params["directory"], _ = stage_directory(directory, names)
        except OSError as exc:
            raise cli.bad_input(str(exc)) from exc
        execution = execution_cli.submit(PIPELINE, params)
        quiet = options["json"]
        if not quiet:
            self.stdout.write(execution_cli.one_line(execution))
        if options["wait"]:
            report = None if quiet else execution_cli.progress_lines(self.stdout)
            execution = execution_cli.follow(execution, report, timeout=options["timeout"])
            # The backfill ends once its children are dispatched; then follow them.
            children = list(execution.children.order_by("created_at", "id"))
            for child in children:
                if not child.is_terminal:
                    report = None if quiet else execution_cli.progress_lines(self.stdout)
                    execution_cli.follow(child, report, timeout=options["timeout"])
        else:
            children = list(execution.children.order_by("created_at", "id"))
        report = {
            **execution_cli.execution_dict(execution, full=True),
            "children": [execution_cli.execution_dict(c) for c in _reload(children)],
        }
        failed = [c for c in report["children"] if c["status"] in FAILED]
        if quiet:
            self.stdout.write(cli.dumps(report))
        else:
            result = execution.result or {}
            missing = result.get("missing_weeks") or []
            self.stdout.write(
                f"{len(report['children'])} week(s) dispatched"
                + (f", missing files for {', '.join(missing)}" if missing else "")
            )
            for child in report["children"]:
                week = child["params"].get("week")
                self.stdout.write(f"  {week}  {child['status']:<9}  {child['id']}")
        if execution.status in FAILED or failed:
            what = f"{len(failed)} week(s) failed" if failed else f"{PIPELINE} {execution.status}"
            raise CommandError(f"backfill: {what}", returncode=cli.EXIT_FAILED)


FAILED = {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.CANCELLED}


def _reload(children: list[Any]) -> list[Any]:
    for child in children:
        child.refresh_from_db()
    return children
