"""The Celery application for Market Spine's workers and beat.

Configured from Django settings (the ``CELERY_`` namespace), so the broker, result
backend and reliability options (late acks, reject on worker loss, prefetch 1) are
set in one place, :mod:`spine.settings`. Database connections persist between tasks
for ``CONN_MAX_AGE`` as they do between requests.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_shutdown

from spine.config import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")

app = Celery("spine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@app.on_configure.connect
def load_settings(**kwargs: Any) -> None:
    """Before the worker, beat or a ``celery`` command reads its configuration, load the
    settings: a bad variable stops it with one ``config error`` line (exit 2)."""
    from django.conf import settings

    exit_on_config_error(lambda: settings.INSTALLED_APPS)


@task_prerun.connect
@task_postrun.connect
def close_old_connections(**kwargs: Any) -> None:
    """Around each task, drop connections past CONN_MAX_AGE or broken, as Django does
    around each request (``CELERY_DB_REUSE_MAX`` stops the fixup closing them all)."""
    from django.db import close_old_connections as close

    close()


@worker_process_shutdown.connect
def mark_metrics_process_dead(pid: int | None = None, **kwargs: Any) -> None:
    """A pool child is exiting: drop its live-gauge files from the metrics directory
    (its counters stay summed; see :mod:`spine.prometheus`)."""
    from django.conf import settings

    from spine.prometheus import mark_dead

    mark_dead(pid or os.getpid(), getattr(settings, "PROMETHEUS_MULTIPROC_DIR", None))
