"""Pagination with totals: every list answers ``count``, ``next``, ``previous``, ``results``.

Clients ask for ``?page=N`` and optionally ``?page_size=M`` (capped at
``max_page_size``, so one request cannot ask for a whole table). A page past the
end is a 404 in the standard error shape.
"""

from __future__ import annotations

from rest_framework.pagination import PageNumberPagination


class StandardPagination(PageNumberPagination):
    """The default for every list endpoint; subclass to change sizes for one view."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    page_query_param = "page"
