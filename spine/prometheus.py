"""Prometheus metrics across processes: what ``/metrics`` serves and how it is gathered
(docs/executions.md#several-processes-prometheus_multiproc_dir).
"""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.registry import Collector

_SCRAPE_COLLECTORS: list[Collector] = []


def register_scrape_collector(collector: Collector) -> None:
    """Serve ``collector`` from ``/metrics`` in both modes (call once per process)."""
    REGISTRY.register(collector)
    _SCRAPE_COLLECTORS.append(collector)


def multiproc_dir() -> str | None:
    """The directory the scrape sums, from the settings (None: single process).

    Read from the settings rather than the environment so a test can point a scrape
    at a worker's directory without switching its own process to file-backed values,
    which prometheus_client decides once, when it is imported.
    """
    from django.conf import settings

    return getattr(settings, "PROMETHEUS_MULTIPROC_DIR", None) or None


def scrape_registry() -> CollectorRegistry:
    """The registry a scrape renders: every process's files, or this process's memory."""
    directory = multiproc_dir()
    if directory is None:
        return REGISTRY
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    for collector in _SCRAPE_COLLECTORS:
        registry.register(collector)
    return registry


def mark_dead(pid: int, directory: str | os.PathLike[str] | None) -> None:
    """Drop an exited process's live-gauge files so its last values stop counting.

    Counter and histogram files are kept on purpose: a worker that exits after
    recording outcomes still contributes them to the totals until the stack restarts.
    """
    if directory:
        mark_process_dead(pid, os.fspath(directory))


def clear_multiproc_dir(directory: str | os.PathLike[str]) -> int:
    """Delete the metric files in ``directory`` and return how many went.

    Run when the stack starts, before any web or worker process: files left by the
    previous run would otherwise be summed into the new one, and a reused process id
    would even continue its predecessor's counts. Only prometheus_client's ``*.db``
    files are touched, so a mistyped directory loses nothing else.
    """
    removed = 0
    for path in Path(directory).glob("*.db"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed += 1
    return removed
