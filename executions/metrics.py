"""Prometheus metrics for executions (default registry, served at ``/metrics``)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from django.db.models import Count
from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from executions.models import Execution, ExecutionStatus
from spine.prometheus import register_scrape_collector

logger = logging.getLogger(__name__)

SUBMITTED = Counter(
    "spine_executions_submitted_total",
    "Executions created by the Dispatcher, by pipeline and trigger source.",
    ["pipeline", "trigger_source"],
)
SUBMIT_FAILURES = Counter(
    "spine_executions_submit_failures_total",
    "Hand-offs the backend refused (broker down); the execution stayed pending.",
    ["pipeline"],
)
FINISHED = Counter(
    "spine_executions_finished_total",
    "Executions that reached a final status, by pipeline and status.",
    ["pipeline", "status"],
)
DURATION = Histogram(
    "spine_execution_duration_seconds",
    "Wall time of a run, from start to its recorded outcome, by pipeline.",
    ["pipeline"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200),
)
LOCK_WAITS = Counter(
    "spine_execution_lock_waits_total",
    "Runs that found their lock key held, by pipeline and policy (wait or fail).",
    ["pipeline", "policy"],
)
REAPED = Counter(
    "spine_executions_reaped_total",
    "Running executions whose heartbeat stopped, by pipeline and what the reaper did.",
    ["pipeline", "action"],
)


class RunningCollector(Collector):
    """``spine_executions_running{pipeline}``, counted in the ledger when scraped."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        yield self._family()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = self._family()
        try:
            rows = (
                Execution.objects.filter(status=ExecutionStatus.RUNNING)
                .values("pipeline")
                .annotate(n=Count("pk"))
                .order_by()
            )
            for row in rows:
                family.add_metric([row["pipeline"]], row["n"])
        except Exception:
            logger.warning("could not count running executions for /metrics", exc_info=True)
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "spine_executions_running",
            "Executions currently running, by pipeline (read from the ledger).",
            labels=["pipeline"],
        )


register_scrape_collector(RunningCollector())
