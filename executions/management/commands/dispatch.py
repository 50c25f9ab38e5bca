"""``manage.py dispatch <pipeline> -p key=value ...``: run a pipeline from a shell."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from executions import cli as execution_cli
from executions.selectors import pipeline_list
from spine import cli


class Command(cli.OperatorCommand):
    help = (
        "Submit one execution of a registered pipeline through the Dispatcher "
        "(trigger: cli) and print its id. Params are validated by the pipeline before "
        "anything is recorded."
    )

    epilog = (
        "examples:\n"
        "  dispatch otc.full_etl -p path=week.psv -p tier=T1 -p week=2025-12-15 -p ats=true \\\n"
        "      --wait\n"
        "  dispatch diag.sleep -p seconds=2 --json\n"
        "  dispatch --list\n\n"
        "A value that reads as JSON (numbers, true/false, lists) is JSON; anything else\n"
        "is a string. Exit codes: 0 done (succeeded, with --wait), 1 the execution\n"
        "failed, 2 bad input (unknown pipeline, invalid params): nothing was recorded."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("pipeline", nargs="?", help="A registered pipeline name.")
        parser.add_argument(
            "-p",
            "--param",
            action="append",
            default=[],
            metavar="KEY=VALUE",
            help="One parameter; repeat for more.",
        )
        parser.add_argument(
            "--lane",
            choices=list(settings.EXECUTION_LANES),
            help="Run on this lane instead of the pipeline's own.",
        )
        parser.add_argument(
            "--wait", action="store_true", help="Follow the execution to its end with progress."
        )
        parser.add_argument(
            "--timeout", type=float, metavar="SECONDS", help="With --wait: stop waiting after this."
        )
        parser.add_argument("--json", action="store_true", help="Print the execution as JSON.")
        parser.add_argument(
            "--list", action="store_true", help="List the registered pipelines and their params."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if options["list"]:
            self._list(options["json"])
            return
        if not options["pipeline"]:
            raise cli.bad_input("give a pipeline name (see dispatch --list)")
        if options["timeout"] is not None and not options["timeout"] > 0:
            raise cli.bad_input("--timeout must be a positive number of seconds")
        params = cli.parse_params(options["param"])
        execution = execution_cli.submit(options["pipeline"], params, lane=options["lane"])
        if options["wait"]:
            report = None if options["json"] else execution_cli.progress_lines(self.stdout)
            execution = execution_cli.follow(execution, report, timeout=options["timeout"])
        if options["json"]:
            self.stdout.write(
                cli.dumps(execution_cli.execution_dict(execution, full=options["wait"]))
            )
            if options["wait"] and execution.status != "succeeded":
                raise CommandError(
                    f"{execution.pipeline} {execution.pk} {execution.status}",
                    returncode=cli.EXIT_FAILED,
                )
            return
        if options["wait"]:
            execution_cli.finish(execution, self.stdout, self.style)
        else:
            self.stdout.write(execution_cli.one_line(execution))

    def _list(self, as_json: bool) -> None:
        pipelines = pipeline_list()
        if as_json:
            self.stdout.write(
                cli.dumps(
                    [
                        {
                            "name": p.name,
                            "description": p.description,
                            "lane": p.lane,
                            "timeout_seconds": p.timeout_seconds,
                            "params": p.params_schema(),
                        }
                        for p in pipelines
                    ]
                )
            )
            return
        for p in pipelines:
            self.stdout.write(f"{p.name}  (lane {p.lane}, {p.timeout_seconds}s)  {p.description}")
            for name, spec in p.params_schema().items():
                need = "required" if spec["required"] else f"default {spec.get('default')!r}"
                self.stdout.write(f"    {name}: {spec['type']}, {need}")
