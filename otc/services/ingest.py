"""Ingest: FINRA weekly bytes → the archive, then parsed from it into a Capture with its
staged normalized rows and rejects, atomically."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

from django.db import transaction

from executions.fencing import fence
from otc import archive
from otc.inbox import open_regular
from otc.models import Capture, CaptureState
from otc.parser import FileFormatError, parse_tier
from otc.services.load import LoadResult, load_capture
from otc.weeks import reporting_week
from spine.time import utc_now

if TYPE_CHECKING:
    from executions.models import Execution

__all__ = [
    "IngestResult",
    "file_checksum",
    "ingest_file",
    "ingest_handle",
    "ingest_lines",
    "resolve_key",
]

#: Lines spooled in memory up to this size before the archive compresses them.
_SPOOL_BYTES = 16 << 20
_HASH_CHUNK = 1 << 20


@dataclass(frozen=True)
class IngestResult:
    """What an ingest did. ``status`` is ``created`` (a new staged capture),
    ``unchanged`` (the current capture holds these bytes: a no-op) or ``resumed`` (a
    newer capture that is not current yet holds them; ``state`` says which)."""

    status: Literal["created", "unchanged", "resumed"]
    capture_id: int
    tier: str
    week: date
    ats: bool
    checksum: str
    rows: int
    rejects: int
    warnings: list[str] = field(default_factory=list)
    state: str = CaptureState.STAGED
    current_capture_id: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form, as pipelines return it."""
        data = asdict(self)
        data["week"] = self.week.isoformat()
        return data


class _Unchanged(Exception):
    def __init__(self, capture: Capture, current: Capture | None) -> None:
        self.capture = capture
        self.current = current


def resolve_key(tier: str, week: date | str) -> tuple[str, date]:
    """Canonical tier code and the Monday of ``week`` (any day of it).

    Raises ``ValueError`` for an unknown tier, or a week before FINRA's data starts
    or after the current week (see :func:`otc.weeks.reporting_week`).
    """
    return parse_tier(tier), reporting_week(week)


def file_checksum(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    with open(path, "rb") as handle:
        return _handle_checksum(handle)


def ingest_file(
    path: str | Path,
    *,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
) -> IngestResult:
    """Ingest a downloaded FINRA weekly file the caller may read (a shell's own file).

    Pipelines read from the inbox instead (:func:`otc.inbox.open_inbox_file`, then
    :func:`ingest_handle`). Only a regular file is read: a directory, FIFO or device
    is refused by name.
    """
    with open_regular(path) as handle:
        return ingest_handle(
            handle, source=str(path), tier=tier, week=week, ats=ats, execution=execution
        )


def ingest_handle(
    handle: BinaryIO,
    *,
    source: str,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
) -> IngestResult:
    """Ingest an open binary FINRA file, recorded with ``source``.

    The bytes go to the archive first (compressed, under their SHA-256); bytes the
    current capture (or a newer pending one) already holds are a no-op without parsing.
    Otherwise they are parsed back from the archive, so the rows are exactly what it
    keeps.
    """
    code, monday = resolve_key(tier, week)
    stored = archive.store(handle)
    return _ingest_archived(
        stored, source=source, tier=code, week=monday, ats=ats, execution=execution
    )


def _handle_checksum(handle: BinaryIO) -> str:
    digest = hashlib.sha256()
    while chunk := handle.read(_HASH_CHUNK):
        digest.update(chunk)
    return digest.hexdigest()


def ingest_lines(
    lines: Iterable[bytes],
    *,
    source: str,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
) -> IngestResult:
    """Ingest download-format ``bytes`` lines (header first) as a capture.

    Identical content to the current capture of (tier, week, ats) is a no-op that says
    so; different content becomes a new staged capture, which supersedes the current
    one (kept queryable) only once its compute passes the quality gate. The lines are
    archived first and parsed from the archive. Raises ``FileFormatError`` (nothing
    written) for file-level problems; row-level problems become ``Reject`` rows.
    """
    code, monday = resolve_key(tier, week)
    with tempfile.SpooledTemporaryFile(max_size=_SPOOL_BYTES) as spool:
        for line in lines:
            spool.write(line)
        spool.seek(0)
        stored = archive.store(spool)
    return _ingest_archived(
        stored, source=source, tier=code, week=monday, ats=ats, execution=execution
    )


def _ingest_archived(
    stored: archive.ArchivedFile,
    *,
    source: str,
    tier: str,
    week: date,
    ats: bool,
    execution: Execution | None,
) -> IngestResult:
    """Record archived bytes as a new capture of (tier, week, ats), parsed from the
    archive, unless a capture of that key already holds them."""
    checksum = stored.checksum
    try:
        with transaction.atomic():
            current = Capture.objects.select_for_update().current().of_key(tier, week, ats).first()
            same = _same_bytes(tier, week, ats, checksum, current)
            if same is not None:
                raise _Unchanged(same, current)
            capture = Capture.objects.create(
                tier=tier,
                week=week,
                ats=ats,
                source=source,
                ingested_at=utc_now(),
                execution=execution,
            )
            loaded, _ = load_capture(capture, archive.iter_lines(checksum))
            _finish(capture, loaded, checksum)
            fence()
    except _Unchanged as unchanged:
        return _unchanged(unchanged.capture, unchanged.current)
    except FileFormatError:
        if stored.created:  # unusable bytes: no capture will ever read them
            archive.archive_storage().delete(stored.name)
        raise
    return IngestResult(
        status="created",
        capture_id=capture.pk,
        tier=tier,
        week=week,
        ats=ats,
        checksum=capture.checksum,
        rows=capture.row_count,
        rejects=capture.reject_count,
        warnings=list(capture.warnings),
        current_capture_id=current.pk if current is not None else None,
    )


def _holders(tier: str, week: date, ats: bool, current: Capture | None) -> list[Capture]:
    """The captures whose bytes a re-ingest would repeat: the current one, and the
    newest capture ingested after it that has not become current."""
    pending = Capture.objects.pending().complete().of_key(tier, week, ats)
    if current is not None:
        pending = pending.filter(pk__gt=current.pk)
    newest = pending.order_by("-pk").first()
    return [c for c in (current, newest) if c is not None]


def _same_bytes(
    tier: str, week: date, ats: bool, checksum: str, current: Capture | None
) -> Capture | None:
    """The capture that already holds these bytes, if any (see :func:`_holders`)."""
    holders = _holders(tier, week, ats, current)
    return next((c for c in holders if c.checksum == checksum), None)


def _unchanged(capture: Capture, current: Capture | None) -> IngestResult:
    return IngestResult(
        status="unchanged" if capture.is_current else "resumed",
        capture_id=capture.pk,
        tier=capture.tier,
        week=capture.week,
        ats=capture.ats,
        checksum=capture.checksum,
        rows=capture.row_count,
        rejects=capture.reject_count,
        warnings=list(capture.warnings),
        state=capture.state,
        current_capture_id=current.pk if current is not None else None,
    )


def _finish(capture: Capture, loaded: LoadResult, checksum: str) -> None:
    """Record counts and warnings; the capture stays staged until compute promotes it.

    ``reject_count`` counts the parser's rejects here; normalize adds the duplicates.
    """
    dates = sorted(loaded.last_update_dates)
    capture.checksum = checksum
    capture.row_count = loaded.rows_read
    capture.reject_count = loaded.invalid
    capture.last_update_dates = [day.isoformat() for day in dates]
    capture.warnings = _warnings(capture.week, loaded.blank_lines, dates)
    capture.ingested_at = utc_now()
    capture.save(
        update_fields=[
            "checksum",
            "row_count",
            "reject_count",
            "last_update_dates",
            "warnings",
            "ingested_at",
        ]
    )


def _warnings(week: date, blank_lines: int, dates: list[date]) -> list[str]:
    warnings = []
    if len(dates) > 1:
        listed = ", ".join(day.isoformat() for day in dates)
        warnings.append(f"mixed lastUpdateDate values in one file: {listed}")
    if dates and dates[0] < week:
        warnings.append(
            f"lastUpdateDate {dates[0].isoformat()} is before the reporting week "
            f"{week.isoformat()}: check the week given for this capture"
        )
    if blank_lines:
        warnings.append(f"{blank_lines} blank line(s) skipped")
    return warnings
