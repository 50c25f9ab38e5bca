"""The Celery application for Market Spine's workers and beat.

Configured from Django settings (the ``CELERY_`` namespace), so the broker, result
backend and reliability options (late acks, reject on worker loss, prefetch 1) are
set in one place, :mod:`spine.settings`.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")

app = Celery("spine")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
