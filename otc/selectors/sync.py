"""Reads for ``otc sync``: how far a sync's ``otc.fetch_week`` children have got."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from executions.models import TERMINAL_STATUSES, Execution

__all__ = ["FETCH_PIPELINE", "SyncProgress"]

FETCH_PIPELINE = "otc.fetch_week"


@dataclass
class SyncProgress:
    """Where a sync's children stand: counts by outcome and rows fetched so far."""

    total: int = 0
    done: int = 0
    failed: int = 0
    cancelled: int = 0
    unchanged: int = 0
    rows: int = 0
    elapsed_seconds: float = 0.0
    _counted: set[str] = field(default_factory=set, repr=False)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the pace so far; ``None`` before the first child ends."""
        if not self.done or self.elapsed_seconds <= 0:
            return None
        return (self.total - self.done) * self.elapsed_seconds / self.done

    def update(self, parent: Execution, elapsed_seconds: float) -> SyncProgress:
        """Read the children of ``parent`` that ended since the last call."""
        self.elapsed_seconds = elapsed_seconds
        children = Execution.objects.filter(parent=parent, pipeline=FETCH_PIPELINE)
        self.total = children.count()
        ended = children.filter(status__in=TERMINAL_STATUSES).exclude(pk__in=self._counted)
        for pk, status, result in ended.values_list("pk", "status", "result"):
            self._counted.add(str(pk))
            self.done += 1
            if status in ("failed", "timed_out"):
                self.failed += 1
            elif status == "cancelled":
                self.cancelled += 1
            else:
                fetched = (result or {}).get("fetch") or {}
                self.rows += int(fetched.get("rows") or 0)
                if (result or {}).get("status") == "unchanged":
                    self.unchanged += 1
        return self

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "done": self.done,
            "failed": self.failed,
            "cancelled": self.cancelled,
            "unchanged": self.unchanged,
            "rows": self.rows,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
        }
