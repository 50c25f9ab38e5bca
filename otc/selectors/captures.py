"""Reads of captures: the lineage, the answering capture per key, raw rows and rejects."""

from __future__ import annotations

from datetime import date, datetime
from typing import NamedTuple

from django.db.models import Count, F, FilteredRelation, Q, QuerySet

from otc import archive
from otc.models import PENDING_STATES, Capture, QualityReport, Reject
from otc.parser import parse_tier
from otc.weeks import week_start
from spine.time import parse_date

__all__ = [
    "available_weeks",
    "capture_versions",
    "captures",
    "current_capture",
    "current_captures",
    "key_filter",
    "latest_quality_report",
    "pending_capture_counts",
    "raw_rows",
    "rejects",
    "with_latest_report",
]


def key_filter(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
) -> Q:
    """Q on the week/tier/ats columns every OTC table carries."""
    q = Q()
    if tier is not None:
        q &= Q(tier=parse_tier(tier))
    if week is not None:
        q &= Q(week=week_start(parse_date(week)))
    if ats is not None:
        q &= Q(ats=ats)
    if week_from is not None:
        q &= Q(week__gte=week_start(parse_date(week_from)))
    if week_to is not None:
        q &= Q(week__lte=week_start(parse_date(week_to)))
    return q


def captures(
    *,
    tier: str | None = None,
    week: date | str | None = None,
    ats: bool | None = None,
    include_superseded: bool = True,
    as_of: datetime | None = None,
) -> QuerySet[Capture]:
    """Captures, newest week first. With ``include_superseded=False`` only those current
    at ``as_of``; otherwise every capture ingested by ``as_of`` (all when ``None``),
    whatever its state."""
    qs = Capture.objects.complete().filter(key_filter(tier=tier, week=week, ats=ats))
    if not include_superseded:
        return qs.known_at(as_of)
    if as_of is not None:
        qs = qs.filter(ingested_at__lte=as_of)
    return qs


def current_captures(
    *,
    tier: str | None = None,
    ats: bool | None = None,
    week: date | str | None = None,
    week_from: date | str | None = None,
    week_to: date | str | None = None,
    as_of: datetime | None = None,
) -> QuerySet[Capture]:
    """The capture answering for each (tier, week, ATS flag) at ``as_of``."""
    key = key_filter(tier=tier, ats=ats, week=week, week_from=week_from, week_to=week_to)
    return Capture.objects.known_at(as_of).filter(key)


def current_capture(
    *, tier: str, week: date | str, ats: bool = False, as_of: datetime | None = None
) -> Capture | None:
    """The one capture answering for (tier, week, ats) at ``as_of``, if any."""
    return current_captures(tier=tier, week=week, ats=ats, as_of=as_of).first()


def pending_capture_counts() -> dict[str, int]:
    """How many captures are staged, failed and rejected (every one of the three
    listed): what did not become current, for operators to look at."""
    rows = Capture.objects.pending().order_by().values_list("state").annotate(n=Count("id"))
    return dict.fromkeys(PENDING_STATES, 0) | dict(rows)


def capture_versions(*, tier: str, week: date | str, ats: bool = False) -> QuerySet[Capture]:
    """Every capture ever taken for (tier, week, ats), newest first: the lineage."""
    return captures(tier=tier, week=week, ats=ats).order_by("-ingested_at", "-id")


def available_weeks(
    *, tier: str | None = None, ats: bool | None = None, as_of: datetime | None = None
) -> list[date]:
    """Weeks that have a current capture at ``as_of``, newest first."""
    qs = current_captures(tier=tier, ats=ats, as_of=as_of)
    return list(qs.order_by("-week").values_list("week", flat=True).distinct())


class RawLine(NamedTuple):
    """One line of a capture's original file: its number (the header is 1) and text."""

    line_no: int
    raw: str


def raw_rows(capture_id: int) -> list[RawLine]:
    """A capture's data lines as received, in file order, read from the archive (line
    endings and lines of only spaces or tabs left out, as the parser skips them)."""
    checksum = Capture.objects.values_list("checksum", flat=True).get(pk=capture_id)
    found = []
    for number, line in enumerate(archive.iter_lines(checksum), start=1):
        text = line.decode("utf-8", errors="replace").rstrip("\r\n")
        if number > 1 and text.strip(" \t"):
            found.append(RawLine(number, text))
    return found


def rejects(capture_id: int) -> QuerySet[Reject]:
    """A capture's rejected lines with reasons, in file order."""
    return Reject.objects.filter(capture_id=capture_id).order_by("line_no")


_REPORT_FIELDS = (
    "id",
    "grade",
    "metrics",
    "warnings",
    "failures",
    "prior_capture_id",
    "computed_at",
)


def with_latest_report(queryset: QuerySet[Capture]) -> QuerySet[Capture]:
    """Captures joined (no extra query) to their latest quality report, whatever their
    state: read it with :func:`latest_quality_report`."""
    latest = FilteredRelation(
        "quality_reports", condition=Q(quality_reports__replaced_at__isnull=True)
    )
    return queryset.annotate(latest_report=latest).annotate(
        **{f"latest_report_{name}": F(f"latest_report__{name}") for name in _REPORT_FIELDS}
    )


def latest_quality_report(capture: Capture) -> QualityReport | None:
    """A capture's latest quality report (a rejected capture's F report too), or
    ``None`` if it was never graded; joined by :func:`with_latest_report` if it was."""
    if not hasattr(capture, "latest_report_id"):
        return QualityReport.objects.filter(capture=capture, replaced_at__isnull=True).first()
    if capture.latest_report_id is None:
        return None
    values = {name: getattr(capture, f"latest_report_{name}") for name in _REPORT_FIELDS}
    return QualityReport(
        capture=capture, week=capture.week, tier=capture.tier, ats=capture.ats, **values
    )
