"""gunicorn settings for the web process: ``gunicorn -c python:spine.gunicorn ...``.

Only the hooks live here; bind address and worker count stay on the command line. The
master does not load Django, so the metrics directory is read from the environment
with the same validation as the settings.
"""

from __future__ import annotations

import os
from typing import Any

from spine.config import parse_multiproc_dir
from spine.prometheus import mark_dead


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: its live gauges must not linger in ``/metrics``."""
    mark_dead(worker.pid, parse_multiproc_dir(os.environ))
