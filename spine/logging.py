"""Structured logging: one JSON object per record, carrying the correlation ids.

``ContextFilter`` copies the request and execution ids from :mod:`spine.context` onto
every record, so any handler and formatter can use them; ``LOG_FORMAT=console``
swaps the JSON formatter for a readable one.
"""

from __future__ import annotations

import logging
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from spine.context import get_execution_id, get_request_id


class ContextFilter(logging.Filter):
    """Attach ``request_id`` and ``execution_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = get_request_id()
        if getattr(record, "execution_id", None) is None:
            record.execution_id = get_execution_id()
        return True


class SpineJsonFormatter(JsonFormatter):
    """JSON lines with a fixed core of fields; ``execution_id`` only when set."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("timestamp", "timestamp")
        kwargs.setdefault("rename_fields", {"levelname": "level", "name": "logger"})
        super().__init__("%(levelname)s %(name)s %(message)s %(request_id)s", *args, **kwargs)

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        super().add_fields(log_data, record, message_dict)
        execution_id = getattr(record, "execution_id", None)
        if execution_id:
            log_data["execution_id"] = execution_id
        else:
            log_data.pop("execution_id", None)


class ConsoleFormatter(logging.Formatter):
    """Readable single-line records for a person at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s%(context)s")

    def format(self, record: logging.LogRecord) -> str:
        parts = []
        if getattr(record, "request_id", None):
            parts.append(f"request_id={record.request_id}")
        if getattr(record, "execution_id", None):
            parts.append(f"execution_id={record.execution_id}")
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return super().format(record)


def logging_config(level: str, fmt: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for Django, for the chosen level and format."""
    formatter = "json" if fmt == "json" else "console"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"context": {"()": "spine.logging.ContextFilter"}},
        "formatters": {
            "json": {"()": "spine.logging.SpineJsonFormatter"},
            "console": {"()": "spine.logging.ConsoleFormatter"},
        },
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": formatter,
                "filters": ["context"],
            }
        },
        "root": {"handlers": ["default"], "level": level},
        "loggers": {
            "django.db.backends": {"level": "WARNING"},
            "celery": {"level": level},
        },
    }
