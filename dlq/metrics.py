"""Prometheus metrics for the dead-letter queue (docs/dlq.md#retention-and-metrics)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from spine.prometheus import register_scrape_collector

logger = logging.getLogger(__name__)

PARKED = Counter(
    "spine_dlq_parked_total",
    "Dead letters parked, by pipeline and failure kind.",
    ["pipeline", "failure_kind"],
)
REPLAYED = Counter(
    "spine_dlq_replayed_total",
    "Dead letters replayed as a new execution, by pipeline, failure kind and trigger "
    "(automatic retry or a person).",
    ["pipeline", "failure_kind", "trigger"],
)
RESOLVED = Counter(
    "spine_dlq_resolved_total",
    "Dead letters closed without a replay, by pipeline, failure kind and resolution "
    "(resolved or discarded).",
    ["pipeline", "failure_kind", "resolution"],
)
PURGED = Counter(
    "spine_dlq_purged_total",
    "Resolved dead letters deleted by the retention purge.",
)


class OpenDeadLettersCollector(Collector):
    """``spine_dlq_open`` gauge: open dead letters by pipeline and failure kind."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        gauge = GaugeMetricFamily(
            "spine_dlq_open",
            "Open dead letters waiting for a retry or a person, by pipeline and failure kind.",
            labels=["pipeline", "failure_kind"],
        )
        try:
            from dlq.selectors import open_counts

            counts = open_counts()
        except Exception:  # a scrape must never fail because the database is away
            logger.warning("could not count open dead letters for /metrics", exc_info=True)
            return
        for (pipeline, kind), count in sorted(counts.items()):
            gauge.add_metric([pipeline, kind], count)
        yield gauge

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Describing without collecting keeps registration free of database access.
        yield GaugeMetricFamily(
            "spine_dlq_open",
            "Open dead letters waiting for a retry or a person, by pipeline and failure kind.",
            labels=["pipeline", "failure_kind"],
        )


_collector: OpenDeadLettersCollector | None = None


def register_open_gauge() -> None:
    """Register the open-letters collector once per process (called from AppConfig.ready)."""
    global _collector
    if _collector is None:
        _collector = OpenDeadLettersCollector()
        register_scrape_collector(_collector)
