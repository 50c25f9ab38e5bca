"""``GET /api/v1/otc/captures/{id}/lines/``: a capture's raw lines from the archive, and
how the API answers the archive's errors (mappers registered from ``ready()``)."""

from __future__ import annotations

import logging
from typing import Any

from rest_framework import exceptions, serializers, status

from otc.archive import ArchiveCorrupted, ArchiveMissing, ArchiveUnavailable
from otc.selectors.lines import MAX_LINES, CaptureLines
from spine.api.errors import SpineAPIError, register_exception_mapper

__all__ = ["CaptureLinesSerializer", "LinesQuery", "register", "render_lines"]

logger = logging.getLogger("otc.archive")


class LinesQuery(serializers.Serializer):
    """``?start=&count=``: the first line wanted (the header is line 1) and how many."""

    start = serializers.IntegerField(
        required=False, default=1, min_value=1, max_value=2**31 - 1, help_text="First line (1)."
    )
    count = serializers.IntegerField(
        required=False,
        default=100,
        min_value=1,
        max_value=MAX_LINES,
        help_text=f"How many lines, 1 to {MAX_LINES} (100).",
    )


class RawLineSerializer(serializers.Serializer):
    line = serializers.IntegerField(help_text="Line number in the file; the header is 1.")
    text = serializers.CharField(
        help_text="The line's bytes without its line ending (LF, or CR LF), decoded as "
        "UTF-8; undecodable bytes become U+FFFD; a BOM on line 1 stays (U+FEFF)."
    )


class CaptureLinesSerializer(serializers.Serializer):
    capture = serializers.IntegerField()
    start = serializers.IntegerField()
    line_count = serializers.IntegerField(help_text="How many lines the whole file has.")
    lines = RawLineSerializer(many=True)


def render_lines(page: CaptureLines) -> dict[str, Any]:
    return {
        "capture": page.capture_id,
        "start": page.start,
        "line_count": page.line_count,
        "lines": [{"line": number, "text": text} for number, text in page.lines],
    }


def _missing(exc: Exception) -> exceptions.APIException:
    return SpineAPIError(str(exc), code="not_archived", status_code=status.HTTP_409_CONFLICT)


def _corrupted(exc: Exception) -> exceptions.APIException:
    logger.error("raw archive corrupted: %s", exc)
    return SpineAPIError(
        str(exc), code="archive_corrupted", status_code=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


def _unavailable(exc: Exception) -> exceptions.APIException:
    return SpineAPIError(
        str(exc), code="archive_unavailable", status_code=status.HTTP_503_SERVICE_UNAVAILABLE
    )


def register() -> None:
    """Map the archive's errors: no object 409, a corrupted one 500, no storage 503."""
    register_exception_mapper(ArchiveMissing, _missing)
    register_exception_mapper(ArchiveCorrupted, _corrupted)
    register_exception_mapper(ArchiveUnavailable, _unavailable)
