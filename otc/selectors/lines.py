"""A capture's raw lines, read from the raw archive by its checksum (verified whole)."""

from __future__ import annotations

from dataclasses import dataclass

from otc import archive
from otc.archive import ArchiveMissing
from otc.models import Capture

__all__ = ["CaptureLines", "MAX_LINES", "capture_lines"]

#: The most lines one API page or admin page serves.
MAX_LINES = 1000


@dataclass(frozen=True)
class CaptureLines:
    """Lines ``start`` … of a capture as ``(line number, text)``; ``text`` is
    :func:`otc.archive.line_text` of the line's bytes."""

    capture_id: int
    start: int
    lines: list[tuple[int, str]]
    line_count: int


def capture_lines(capture: Capture, start: int, count: int) -> CaptureLines:
    """The capture's lines ``start`` … ``start + count - 1`` (the header is line 1).

    Raises :class:`~otc.archive.ArchiveMissing` naming the capture when the archive
    holds no bytes for it (a capture ingested before the archive, or still streaming),
    :class:`~otc.archive.ArchiveCorrupted` when its object fails verification.
    """
    if not capture.checksum:
        raise ArchiveMissing(
            f"capture {capture.pk} has no archived bytes: its ingest has not committed"
        )
    try:
        page = archive.read_page(capture.checksum, start, count)
    except ArchiveMissing as exc:
        raise ArchiveMissing(
            f"capture {capture.pk} has no archived bytes ({exc}); it was ingested "
            "before the raw archive kept originals, or its object was removed"
        ) from None
    lines = [(number, archive.line_text(line)) for number, line in page.lines]
    return CaptureLines(capture.pk, start, lines, page.line_count)
