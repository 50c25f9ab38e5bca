"""An admin paginator that does not count a big table row by row just to show page links."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from django.core.paginator import Paginator
from django.db import connections

#: Below this estimate an exact count is cheap enough and is used instead.
EXACT_BELOW = 20_000


def estimated_rows(model: Any, using: str = "default") -> int | None:
    """The planner's row estimate for ``model``'s table on PostgreSQL, else None."""
    connection = connections[using]
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)",
            [connection.ops.quote_name(model._meta.db_table)],
        )
        row = cursor.fetchone()
    if row is None or row[0] is None or row[0] < 0:  # -1: never analysed
        return None
    return int(row[0])


class EstimatedCountPaginator(Paginator):
    """Counts exactly when filtered or small; estimates an unfiltered big table."""

    is_estimate = False

    @cached_property
    def count(self) -> int:
        qs = self.object_list
        query = getattr(qs, "query", None)
        if query is not None and not query.where and not query.distinct:
            estimate = estimated_rows(qs.model, qs.db)
            if estimate is not None and estimate >= EXACT_BELOW:
                self.is_estimate = True
                return estimate
        return super().count
