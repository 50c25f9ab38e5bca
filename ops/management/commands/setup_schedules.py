"""``manage.py setup_schedules``: install Market Spine's periodic tasks (idempotent)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import CommandParser

from ops.schedules import SCHEDULES, ensure_schedules
from spine import cli


class Command(cli.OperatorCommand):
    help = (
        "Create the django-celery-beat periodic tasks Market Spine needs: the pending-"
        "execution sweeper, the heartbeat reaper, dead-letter retries, daily retention "
        "cleanup and the weekly FINRA fetch per tier. Each runs a maintenance pipeline "
        "through the Dispatcher (trigger: schedule). Safe to run again: existing entries "
        "are kept as edited in the admin unless --reset."
    )

    def get_epilog(self) -> str:
        return "schedules:\n" + "\n".join(
            f"  {spec.name:<34} {spec.pipeline:<20} {spec.when()}" for spec in SCHEDULES
        )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Restore the defaults of entries that were edited (re-enables them too).",
        )
        parser.add_argument("--json", action="store_true", help="Print what was done as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        outcome = ensure_schedules(reset=options["reset"])
        if options["json"]:
            self.stdout.write(
                cli.dumps(
                    [
                        {
                            "name": spec.name,
                            "pipeline": spec.pipeline,
                            "params": spec.params,
                            "when": spec.when(),
                            "action": action,
                        }
                        for spec, action in outcome
                    ]
                )
            )
            return
        for spec, action in outcome:
            note = " (edited in the admin; --reset restores it)" if action == "kept" else ""
            self.stdout.write(f"{action:<9} {spec.name:<34} {spec.when()}{note}")
        created = sum(1 for _, action in outcome if action == "created")
        self.stdout.write(self.style.SUCCESS(f"{len(outcome)} schedules, {created} created"))
