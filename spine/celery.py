"""The Celery application for Market Spine's workers and beat (docs/architecture.md)."""

from __future__ import annotations

import logging
import os
from typing import Any

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_process_shutdown, worker_ready

from spine.config import exit_on_config_error

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")

app = Celery("spine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

logger = logging.getLogger(__name__)


@app.on_configure.connect
def load_settings(**kwargs: Any) -> None:
    """Before the worker, beat or a ``celery`` command reads its configuration, load the
    settings and the apps (which check their own variables): a bad variable stops it
    with one ``config error`` line (exit 2)."""
    import django
    from django.apps import apps
    from django.conf import settings

    exit_on_config_error(lambda: settings.INSTALLED_APPS)
    if not (apps.ready or apps.loading):
        exit_on_config_error(django.setup)


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


@worker_ready.connect
def reap_on_start(sender: Any = None, **kwargs: Any) -> None:
    """One reap pass for the lanes this worker consumes, once it is ready; executions
    still beating elsewhere are left alone (the reaper's heartbeat rule)."""
    from executions.recovery import reap_stale_executions

    queues = sender.app.amqp.queues.consume_from if sender is not None else None
    lanes = sorted(queues or ())
    from django.db import connections

    try:
        reaped = reap_stale_executions(lanes=lanes)
    except Exception:  # the worker runs without it; beat's ops.reap comes later
        logger.exception("reap at worker start failed")
        return
    finally:
        connections.close_all()  # the main process holds none while it consumes
    logger.info("reap at worker start (lanes %s): %s settled", ", ".join(lanes), len(reaped))
