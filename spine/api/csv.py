"""``?format=csv`` for list endpoints: the whole filtered list streamed as CSV, same columns.

A view mixes in :class:`CSVListMixin` and names its list actions in ``csv_actions``;
docs/api.md ("CSV") says what a client gets.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from django.http import Http404, StreamingHttpResponse
from django.http.response import HttpResponseBase
from rest_framework import serializers
from rest_framework.exceptions import ValidationError
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.settings import api_settings

__all__ = [
    "CHUNK_ROWS",
    "CSVListMixin",
    "CSVRenderer",
    "csv_cell",
    "csv_columns",
    "csv_filename",
    "document_csv",
]

#: Rows fetched from the database per round trip, and written per chunk of the body.
CHUNK_ROWS = 500
CONTENT_TYPE = "text/csv; charset=utf-8"
#: Characters a spreadsheet reads as the start of a formula (OWASP, "CSV Injection").
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMERIC = (serializers.IntegerField, serializers.DecimalField, serializers.FloatField)
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 150


class CSVRenderer(BaseRenderer):
    """Selects CSV in content negotiation (``?format=csv`` or ``Accept: text/csv``).

    The body itself is streamed by :class:`CSVListMixin`; a view that returns a plain
    ``Response`` for a CSV request has a bug, and gets a loud error rather than JSON
    labelled as CSV."""

    media_type = "text/csv"
    format = "csv"
    charset = "utf-8"

    def render(
        self,
        data: Any,
        accepted_media_type: str | None = None,
        renderer_context: dict[str, Any] | None = None,
    ) -> bytes:
        raise RuntimeError("CSV bodies are streamed by CSVListMixin, not rendered")


def csv_cell(value: Any, *, numeric: bool = False) -> str:
    """One cell: ``None`` empty, booleans as JSON writes them, nested values as JSON,
    and text that a spreadsheet would read as a formula prefixed with ``'`` (numbers
    stay as they are: a number is never a formula)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float, Decimal)):
        return str(value)
    if isinstance(value, (dict, list)):
        text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    else:
        text = str(value)
    if not numeric and text.startswith(FORMULA_START):
        return "'" + text
    return text


def csv_columns(serializer: serializers.Serializer) -> list[tuple[str, tuple[str, ...], bool]]:
    """The serializer's fields in order as (header, path, numeric); a nested serializer's
    fields under dotted names (``parent.child``), lists and dicts as one JSON cell."""
    columns: list[tuple[str, tuple[str, ...], bool]] = []
    for field in serializer._readable_fields:
        if isinstance(field, serializers.Serializer):
            for header, path, numeric in csv_columns(field):
                columns.append((f"{field.field_name}.{header}", (field.field_name, *path), numeric))
        else:
            columns.append((field.field_name, (field.field_name,), isinstance(field, _NUMERIC)))
    return columns


def _value(data: Any, path: tuple[str, ...]) -> Any:
    for name in path:
        if not isinstance(data, dict):
            return None
        data = data.get(name)
    return data


_FORMULA_SET = frozenset(FORMULA_START)


def _cell_reader(path: tuple[str, ...], numeric: bool) -> Any:
    """``data → cell`` for one column: :func:`csv_cell`, with the common cases (a flat
    field holding text or a number) inlined, as it runs for every cell of a large list."""
    if len(path) > 1:
        return lambda data: csv_cell(_value(data, path), numeric=numeric)
    (name,) = path
    if numeric:

        def number(data: dict[str, Any]) -> str:
            value = data.get(name)
            return value if value.__class__ is str else csv_cell(value, numeric=True)

        return number

    def text(data: dict[str, Any]) -> str:
        value = data.get(name)
        if value.__class__ is str:
            return "'" + value if value[:1] in _FORMULA_SET else value
        return csv_cell(value)

    return text


def csv_filename(request: Request) -> str:
    """A file name that says what was asked: the path after the API version, then the
    query parameters (``format`` aside) in name order, e.g.
    ``otc-symbols_tier-T1_week-2025-12-15.csv``."""
    path = request.path.strip("/").split("/")
    if len(path) >= 2 and path[0] == "api":
        path = path[2:]
    parts = ["-".join(part for part in path if part)]
    for name in sorted(request.query_params):
        if name == api_settings.URL_FORMAT_OVERRIDE:
            continue
        parts.append(f"{name}-{request.query_params.get(name, '')}")
    name = _UNSAFE_NAME.sub("-", "_".join(parts)).strip("-_.")[:_MAX_NAME] or "export"
    return f"{name}.csv"


def _lines(
    rows: Iterable[Any], serializer: serializers.Serializer, chunk_rows: int
) -> Iterator[bytes]:
    columns = csv_columns(serializer)
    buffer = io.StringIO()
    # Every cell quoted (OWASP): a separator of another locale (";") inside a cell
    # cannot start a new cell that a spreadsheet would evaluate.
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([header for header, _, _ in columns])
    cells = [_cell_reader(path, numeric) for _, path, numeric in columns]
    pending = 0
    for row in rows:
        data = serializer.to_representation(row)
        writer.writerow([cell(data) for cell in cells])
        pending += 1
        if pending >= chunk_rows:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue().encode()


def stream_csv(
    rows: Any,
    serializer: serializers.Serializer,
    filename: str,
    *,
    chunk_rows: int = CHUNK_ROWS,
) -> StreamingHttpResponse:
    """A streamed CSV body of ``rows`` as ``serializer`` renders them, read in chunks
    (``rows.iterator(chunk_size=...)`` when it has one: a queryset's server-side cursor)."""
    iterator = getattr(rows, "iterator", None)
    source = iterator(chunk_size=chunk_rows) if callable(iterator) else rows
    response = StreamingHttpResponse(
        _lines(source, serializer, chunk_rows), content_type=CONTENT_TYPE
    )
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class CSVListMixin:
    """``?format=csv`` (or ``Accept: text/csv``) on the actions named in ``csv_actions``:
    the whole filtered list, not paginated, streamed as CSV with the serializer's fields
    as columns. Errors stay JSON. Put it before the DRF mixins in the bases."""

    #: The view's list actions (``list``, ``@action`` names, ``retrieve`` if it lists).
    csv_actions: tuple[str, ...] = ("list",)

    def get_renderers(self) -> list[BaseRenderer]:
        renderers = super().get_renderers()  # type: ignore[misc]
        if getattr(self, "action", None) in self.csv_actions:
            renderers.append(CSVRenderer())
        return renderers

    def perform_content_negotiation(self, request: Request, force: bool = False) -> Any:
        if getattr(self, "action", None) is None:
            # No action for the method: let its 405 (in JSON) come first.
            force = True
        try:
            return super().perform_content_negotiation(request, force)  # type: ignore[misc]
        except Http404:
            if api_settings.URL_FORMAT_OVERRIDE not in request.query_params:
                raise  # a format suffix in the path: no such path, as before
            formats = [r.format for r in self.get_renderers() if r.format != "api"]
            given = request.query_params.get(api_settings.URL_FORMAT_OVERRIDE, "")
            raise ValidationError(
                {
                    api_settings.URL_FORMAT_OVERRIDE: [
                        f"{given[:40]!r} is not a format of this endpoint: "
                        f"use {' or '.join(formats)}."
                    ]
                }
            ) from None

    def wants_csv(self) -> bool:
        return isinstance(getattr(self.request, "accepted_renderer", None), CSVRenderer)  # type: ignore[attr-defined]

    def list(self, request: Request, *args: Any, **kwargs: Any) -> HttpResponseBase:
        if not self.wants_csv():
            return super().list(request, *args, **kwargs)  # type: ignore[misc]
        self.check_page_params()
        queryset = self.filter_queryset(self.get_queryset())  # type: ignore[attr-defined]
        return self.csv_response(queryset)

    def check_page_params(self) -> None:
        """``page`` / ``page_size`` do not apply to CSV, but a bad one is still a 400."""
        paginator = self.paginator  # type: ignore[attr-defined]
        for check in ("requested_page", "get_page_size"):
            method = getattr(paginator, check, None)
            if callable(method):
                method(self.request)  # type: ignore[attr-defined]

    def csv_response(
        self, rows: QuerySet | Any, serializer_class: type[serializers.Serializer] | None = None
    ) -> StreamingHttpResponse:
        """Stream every row of ``rows`` (a queryset, or anything with ``iterator``)."""
        serializer_class = serializer_class or self.get_serializer_class()  # type: ignore[attr-defined]
        context = self.get_serializer_context()  # type: ignore[attr-defined]
        if context.get("request") is not None:
            context["request"] = _LinkRequest(context["request"])
        serializer = serializer_class(context=context)
        return stream_csv(rows, serializer, csv_filename(self.request))  # type: ignore[attr-defined]

    def list_response(
        self,
        rows: QuerySet | Any,
        serializer_class: type[serializers.Serializer],
        *,
        if_empty: Any = None,
    ) -> HttpResponseBase:
        """The list answer of an ``@action``: a page of JSON, or the whole list as CSV.
        ``if_empty()`` runs when there is nothing to list (to raise a 404 for an unknown
        key) — before the CSV starts, since a stream cannot turn into an error."""
        if self.wants_csv():
            self.check_page_params()
            if if_empty is not None and not _exists(rows):
                if_empty()
            return self.csv_response(rows, serializer_class)
        page = self.paginate_queryset(rows)  # type: ignore[attr-defined]
        if not page and if_empty is not None:
            if_empty()
        data = serializer_class(page, many=True, context=self.get_serializer_context()).data  # type: ignore[attr-defined]
        return self.get_paginated_response(data)  # type: ignore[attr-defined]

    def finalize_response(
        self, request: Request, response: HttpResponseBase, *args: Any, **kwargs: Any
    ) -> HttpResponseBase:
        # An error (or anything not streamed) of a CSV request is answered in JSON.
        if isinstance(response, Response) and (
            isinstance(getattr(request, "accepted_renderer", None), CSVRenderer)
            or request.query_params.get(api_settings.URL_FORMAT_OVERRIDE) == CSVRenderer.format
        ):
            request.accepted_renderer = JSONRenderer()
            request.accepted_media_type = JSONRenderer.media_type
        return super().finalize_response(request, response, *args, **kwargs)  # type: ignore[misc]


class _LinkRequest:
    """The request as links in CSV rows see it: without ``format``, so a row's URL is
    the resource's own (DRF carries ``?format=`` over into every link it builds)."""

    def __init__(self, request: Request) -> None:
        self._request = request
        self.GET = request.GET.copy()
        self.GET.pop(api_settings.URL_FORMAT_OVERRIDE, None)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._request, name)


def _exists(rows: Any) -> bool:
    exists = getattr(rows, "exists", None)
    return bool(exists()) if callable(exists) else bool(rows)


def document_csv(schema: Any, operation: dict[str, Any]) -> None:
    """Document a CSV-capable operation: the ``format`` query parameter, and ``text/csv``
    (a string) on its success responses only — errors are JSON."""
    if CSVRenderer.media_type not in schema.map_renderers("media_type"):
        return
    params = operation.setdefault("parameters", [])
    if not any(p.get("name") == api_settings.URL_FORMAT_OVERRIDE for p in params):
        params.append(
            {
                "name": api_settings.URL_FORMAT_OVERRIDE,
                "in": "query",
                "required": False,
                "description": "csv: the whole filtered list (not paginated), streamed as "
                "CSV with the JSON rows' fields as columns (docs/api.md).",
                "schema": {"type": "string", "enum": ["json", "csv"]},
            }
        )
    for code, response in operation.get("responses", {}).items():
        content = response.get("content", {})
        if CSVRenderer.media_type not in content:
            continue
        if str(code).startswith("2"):
            content[CSVRenderer.media_type] = {
                "schema": {"type": "string", "description": "CSV, a header row first."}
            }
        else:
            del content[CSVRenderer.media_type]
