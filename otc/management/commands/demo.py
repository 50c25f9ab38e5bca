"""Run Market Spine's main job on whatever database and backend are configured."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import connection
from django.db.migrations.executor import MigrationExecutor


class Command(BaseCommand):
    help = (
        "Run the Market Spine demo: check the database is migrated and print a summary "
        "of the configuration with the next steps."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        executor = MigrationExecutor(connection)
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            self.stderr.write(
                self.style.ERROR(f"{len(pending)} migrations are not applied; run migrate first.")
            )
            raise SystemExit(1)
        db = settings.DATABASES["default"]
        self.stdout.write(self.style.SUCCESS("Market Spine is ready."))
        self.stdout.write(f"  database:  {db['ENGINE'].rsplit('.', 1)[-1]} {db['NAME']}")
        self.stdout.write(f"  backend:   {settings.EXECUTION_BACKEND}")
        self.stdout.write(f"  redis:     {settings.REDIS_URL or 'not configured (not needed)'}")
        self.stdout.write("  admin:     .venv/bin/python manage.py createsuperuser, then")
        self.stdout.write("             .venv/bin/python manage.py runserver -> /admin/")
