"""Logging: JSON lines for servers and workers, readable lines for people at a shell."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
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


#: Commands that are servers: they keep the servers' logging.
SERVER_COMMANDS = frozenset({"runserver"})
_command_verbosity: int | None = None
_reported_pipeline: str | None = None


def verbosity_from_argv(argv: Sequence[str]) -> int:
    """The ``-v N`` / ``--verbosity N`` a Django command line asks for (1 when none)."""
    verbosity = "1"
    args = list(argv)
    for i, arg in enumerate(args):
        if arg == "--":
            break
        if arg in ("-v", "--verbosity") and i + 1 < len(args):
            verbosity = args[i + 1]
        elif arg.startswith("--verbosity="):
            verbosity = arg.partition("=")[2]
        elif arg.startswith("-v") and arg[2:].isdigit():
            verbosity = arg[2:]
    return int(verbosity) if verbosity.isdigit() else 1


def use_command_logging(argv: Sequence[str]) -> None:
    """Mark this process as a management command run from ``argv`` (``manage.py``'s),
    before the settings load; server commands (``runserver``) are left alone."""
    global _command_verbosity
    if len(argv) > 1 and argv[1] in SERVER_COMMANDS:
        return
    _command_verbosity = verbosity_from_argv(argv[2:])


def command_verbosity() -> int | None:
    """The verbosity of the command this process runs; ``None`` for servers and workers."""
    return _command_verbosity


def command_level(configured: str, verbosity: int) -> str:
    """A command's log level: ``configured`` (``SPINE_COMMAND_LOG_LEVEL``), lowered to
    INFO by ``-v 2`` and to DEBUG by ``-v 3``."""
    level = logging.getLevelNamesMapping()[configured]
    if verbosity >= 3:
        level = min(level, logging.DEBUG)
    elif verbosity == 2:
        level = min(level, logging.INFO)
    return logging.getLevelName(level)


@contextmanager
def reported_by_command(pipeline: str) -> Iterator[None]:
    """While a command dispatches ``pipeline``, the runner's line on how its execution
    ended is left out of the command's log: the command reports the outcome itself."""
    global _reported_pipeline
    previous, _reported_pipeline = _reported_pipeline, pipeline
    try:
        yield
    finally:
        _reported_pipeline = previous


class CommandReportFilter(logging.Filter):
    """Drop the runner's outcome record (the one with ``status`` in its extra) for the
    pipeline a command is dispatching, so its error is printed once, by the command."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            _reported_pipeline is not None
            and record.name == "executions.runner"
            and getattr(record, "status", None) is not None
            and getattr(record, "pipeline", None) == _reported_pipeline
        )


def escape_controls(text: str) -> str:
    """``text`` with control and other unprintable characters escaped (``\\n``, ``\\x00``),
    so one record stays one line."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


class CommandFormatter(logging.Formatter):
    """``LEVEL logger: message`` on one line; an exception adds ``(Type: message)``, or
    its traceback when ``tracebacks`` (``-v 3``)."""

    def __init__(self, tracebacks: bool = False) -> None:
        super().__init__()
        self.tracebacks = tracebacks

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname} {record.name}: {record.getMessage()}"
        execution_id = getattr(record, "execution_id", None)
        if execution_id and str(execution_id) not in line:
            line += f" [execution {execution_id}]"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            if not self.tracebacks:
                return escape_controls(f"{line} ({type(exc).__name__}: {exc})")
            return escape_controls(line) + "\n" + self.formatException(record.exc_info)
        return escape_controls(line)


def command_logging_config(level: str, fmt: str) -> dict[str, Any]:
    """The ``LOGGING`` dict for a management command: stderr, ``level``, readable lines
    (or JSON when ``fmt`` is ``json``), each outcome the command reports left out."""
    config = logging_config(level, fmt)
    config["filters"]["reported"] = {"()": "spine.logging.CommandReportFilter"}
    config["formatters"]["command"] = {
        "()": "spine.logging.CommandFormatter",
        "tracebacks": level == "DEBUG",
    }
    handler = config["handlers"]["default"]
    handler["stream"] = "ext://sys.stderr"
    handler["filters"] = ["context", "reported"]
    if fmt != "json":
        handler["formatter"] = "command"
    return config
