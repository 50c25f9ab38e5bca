"""gunicorn settings for the web process: ``gunicorn -c python:spine.gunicorn ...``.

Only the hooks live here; bind address and worker count stay on the command line. The
master does not load Django, so it checks the environment here, with the settings' own
parser: a bad variable stops it with one ``config error`` line (exit 2) before any
worker starts.
"""

from __future__ import annotations

import os
from typing import Any

from spine.config import exit_on_config_error, load_config, parse_multiproc_dir
from spine.prometheus import mark_dead

exit_on_config_error(lambda: load_config(os.environ))


def child_exit(server: Any, worker: Any) -> None:
    """A worker exited: its live gauges must not linger in ``/metrics``."""
    mark_dead(worker.pid, parse_multiproc_dir(os.environ))
