"""Pagination with totals: every list answers ``count``, ``next``, ``previous``, ``results``.

Clients ask for ``?page=N`` (a whole number, 1 or more) and optionally
``?page_size=M`` (1 to ``max_page_size``, so one request cannot ask for a whole
table). Anything else in either is a 400 naming the parameter; a page past the end,
however far, is a 404. Both in the standard error shape.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.paginator import InvalidPage
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request

from spine.api.errors import SpineAPIError

_WHOLE = re.compile(r"[0-9]+\Z")
#: Past the end of any table: longer page numbers are read as this one.
_FAR_PAST_END = 10**18


def _whole(text: str) -> int | None:
    """A whole number written in ASCII digits, or None; huge ones read as far past the end."""
    if not _WHOLE.match(text):
        return None
    digits = text.lstrip("0") or "0"
    return int(digits) if len(digits) < 18 else _FAR_PAST_END


def page_past_end(number: Any, pages: int | None = None) -> SpineAPIError:
    """The 404 for a page that does not exist."""
    details: dict[str, Any] = {"page": str(number)}
    message = f"Page {number} is past the end"
    if pages is not None:
        details["pages"] = pages
        message += f" (there {'is 1 page' if pages == 1 else f'are {pages} pages'})"
    return SpineAPIError(message + ".", code="not_found", details=details, status_code=404)


class StandardPagination(PageNumberPagination):
    """The default for every list endpoint; subclass to change sizes for one view."""

    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 500
    page_query_param = "page"
    last_page_strings = ()

    def paginate_queryset(self, queryset: Any, request: Request, view: Any = None) -> Any:
        self.request = request
        page_size = self.get_page_size(request)
        number = self.requested_page(request)
        paginator = self.django_paginator_class(queryset, page_size)
        try:
            self.page = paginator.page(number)
        except InvalidPage:
            shown = request.query_params.get(self.page_query_param, "").lstrip("0")
            raise page_past_end(shown[:40], paginator.num_pages) from None
        if paginator.num_pages > 1 and self.template is not None:
            self.display_page_controls = True
        return list(self.page)

    def requested_page(self, request: Request) -> int:
        """``?page=``: 1 when absent; a 400 unless a whole number ≥ 1."""
        text = request.query_params.get(self.page_query_param)
        if text is None:
            return 1
        number = _whole(text)
        if number is None or number < 1:
            raise ValidationError(
                {self.page_query_param: [f"{text[:40]!r} is not a page number (1, 2, ...)."]}
            )
        return number

    def get_page_size(self, request: Request) -> int:
        """``?page_size=``: the default when absent; a 400 unless 1..``max_page_size``."""
        text = request.query_params.get(self.page_size_query_param)
        if text is None:
            return self.page_size
        size = _whole(text)
        if size is None or not 1 <= size <= self.max_page_size:
            raise ValidationError(
                {
                    self.page_size_query_param: [
                        f"{text[:40]!r} is not a page size: use a whole number "
                        f"from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        return page_parameters(self.max_page_size)


def page_parameters(max_page_size: int = StandardPagination.max_page_size) -> list[dict[str, Any]]:
    """The OpenAPI ``page`` and ``page_size`` query parameters, with their bounds."""
    return [
        {
            "name": "page",
            "required": False,
            "in": "query",
            "description": "Page number, from 1; a page past the end is a 404.",
            "schema": {"type": "integer", "minimum": 1},
        },
        {
            "name": "page_size",
            "required": False,
            "in": "query",
            "description": f"Results per page, 1 to {max_page_size} (default 50).",
            "schema": {"type": "integer", "minimum": 1, "maximum": max_page_size},
        },
    ]


__all__ = ["StandardPagination", "page_parameters", "page_past_end"]
