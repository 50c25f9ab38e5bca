"""``manage.py reset_metrics_dir``: empty ``PROMETHEUS_MULTIPROC_DIR`` at stack start-up."""

from __future__ import annotations

from typing import Any

from spine.cli import SpineCommand
from spine.prometheus import clear_multiproc_dir, multiproc_dir


class Command(SpineCommand):
    help = (
        "Delete the metric files in PROMETHEUS_MULTIPROC_DIR. Run once when the stack "
        "starts, before web and worker processes; a no-op when the variable is unset."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        directory = multiproc_dir()
        if directory is None:
            self.stdout.write("PROMETHEUS_MULTIPROC_DIR is not set: nothing to reset.")
            return
        removed = clear_multiproc_dir(directory)
        self.stdout.write(f"Removed {removed} metric file(s) from {directory}.")
