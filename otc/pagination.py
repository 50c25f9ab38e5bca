"""The platform's pagination with the total counted inside the page's own query."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import IntegerField, QuerySet, Subquery

from spine.api.pagination import StandardPagination

#: The annotation carrying the total on each row of the page.
TOTAL = "_page_total"
#: Offsets beyond this are past the end of any table (and beyond what the databases'
#: 64-bit OFFSET can hold): such a page takes the counting path, to its 404.
MAX_OFFSET = 2**62


class _Count(Subquery):
    """``(SELECT COUNT(*) FROM (<queryset>))`` as an expression."""

    template = "(SELECT COUNT(*) FROM (%(subquery)s) counted)"
    output_field = IntegerField()


class PageSource:
    """Rows paged by a selector rather than a queryset: ``fetch(offset, limit)`` gives a
    page's rows and the total (``None`` when the page is empty), ``count()`` the total."""

    def __init__(
        self,
        fetch: Callable[[int, int], tuple[list[Any], int | None]],
        count: Callable[[], int],
    ) -> None:
        self.fetch = fetch
        self._count = count

    def count(self) -> int:
        return self._count()

    def __getitem__(self, window: slice) -> list[Any]:
        start = window.start or 0
        return self.fetch(start, window.stop - start)[0] if window.stop > start else []


class OneQueryPaginator(Paginator):
    def page(self, number: Any) -> Page:
        if _is_source(self.object_list):
            return self._source_page(number)
        rows = self._rows(number)
        if not rows:
            return super().page(number)
        first = rows[0]
        self.__dict__["count"] = first[TOTAL] if isinstance(first, dict) else getattr(first, TOTAL)
        return self._get_page(rows, int(number), self)

    def _source_page(self, number: Any) -> Page:
        try:
            index = int(number)
        except (TypeError, ValueError):
            index = 0
        if 1 <= index and (index - 1) * self.per_page <= MAX_OFFSET:
            rows, total = self.object_list.fetch((index - 1) * self.per_page, self.per_page)
            if rows:
                self.__dict__["count"] = total
                return self._get_page(rows, index, self)
        return super().page(number)

    def _rows(self, number: Any) -> list[Any]:
        """The page's rows with the total, or ``[]`` to let Django decide (also for a
        page number that is not a positive integer: Django's own error then)."""
        queryset = self.object_list
        try:
            index = int(number)
        except (TypeError, ValueError):
            return []
        bottom = (index - 1) * self.per_page
        if index < 1 or bottom > MAX_OFFSET or not isinstance(queryset, QuerySet):
            return []
        counted = queryset.annotate(**{TOTAL: _Count(queryset.order_by().values("pk"))})
        return list(counted[bottom : bottom + self.per_page])


def _is_source(rows: Any) -> bool:
    """A :class:`PageSource`, or any object paging itself the same way (``fetch``)."""
    return isinstance(rows, PageSource) or callable(getattr(rows, "fetch", None))


__all__ = ["OneQueryPaginator", "OneQueryPagination", "PageSource"]


class OneQueryPagination(StandardPagination):
    """:class:`~spine.api.pagination.StandardPagination`, one query per page."""

    django_paginator_class = OneQueryPaginator
