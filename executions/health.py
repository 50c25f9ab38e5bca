"""Queued executions that waited too long for a worker, in ``/health/ready`` details."""

from __future__ import annotations

from typing import Any

from executions import selectors
from spine import health
from spine.time import utc_now

DETAIL_NAME = "executions"


def executions_detail() -> dict[str, Any]:
    """How many queued executions have waited past the lost-message threshold."""
    return selectors.stale_queued_count(utc_now())


def register() -> None:
    """Add the detail provider (called from the app's ``ready``)."""
    health.register_detail_provider(DETAIL_NAME, executions_detail)
