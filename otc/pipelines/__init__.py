"""The OTC pipelines, registered with the execution registry when this package is imported."""

from otc.pipelines import backfill, etl, fetch, scheduled, sync

__all__ = ["backfill", "etl", "fetch", "scheduled", "sync"]
