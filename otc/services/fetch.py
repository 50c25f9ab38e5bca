"""Fetch one FINRA week over the Query API into a capture, through the file ingest."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, Any

from otc.finra import FinraClient, FinraProtocolError, api_rows_to_lines
from otc.finra.client import TIER_IDENTIFIERS, WEEKLY_SUMMARY_PATH
from otc.finra.config import client_config
from otc.models import Capture
from otc.parser import parse_tier
from otc.services.errors import OtcError
from otc.services.ingest import IngestResult, ingest_lines, resolve_key
from spine.text import quote
from spine.time import utc_now

if TYPE_CHECKING:
    from executions.models import Execution

__all__ = [
    "FetchProgress",
    "FetchResult",
    "WeekNotPublished",
    "fetch_week",
    "finra_client",
    "published_weeks",
    "summary_types",
]


class WeekNotPublished(OtcError):
    """FINRA returned no rows for the week: not published (yet) for this tier and kind."""


@dataclass(frozen=True)
class FetchProgress:
    """Where a download stands after a page: pages and rows so far, and the pace."""

    pages: int
    rows: int
    elapsed_seconds: float

    @property
    def rows_per_second(self) -> float:
        return round(self.rows / self.elapsed_seconds, 1) if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "pages": self.pages,
            "rows": self.rows,
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rows_per_second": self.rows_per_second,
        }


@dataclass(frozen=True)
class FetchResult:
    """The download's totals and what the ingest made of it."""

    progress: FetchProgress
    source: str
    ingest: IngestResult

    def as_dict(self) -> dict[str, Any]:
        return {
            "fetch": {**self.progress.as_dict(), "source": self.source},
            **self.ingest.as_dict(),
        }


ProgressCallback = Callable[[FetchProgress], None]


def finra_client() -> FinraClient:
    """A client on :func:`~otc.finra.config.client_config`; its breaker and rate limiter are the
    process-wide ones, so every fetch in a process shares one budget and one circuit."""
    return FinraClient(client_config())


def summary_types(ats: bool) -> tuple[str, str]:
    """FINRA's summary type codes for (per-venue rows, per-symbol totals)."""
    return ("ATS_W_SMBL_FIRM", "ATS_W_SMBL") if ats else ("OTC_W_SMBL_FIRM", "OTC_W_SMBL")


def describe_source(base_url: str, *, summary_type: str, tier: str, week: date) -> str:
    """The capture's ``source``: the query that produced it, readable and reproducible."""
    return (
        f"{base_url}{WEEKLY_SUMMARY_PATH} summaryTypeCode={summary_type} "
        f"tierIdentifier={TIER_IDENTIFIERS[tier]} weekStartDate={week.isoformat()}"
    )


def fetch_week(
    client: FinraClient,
    *,
    tier: str,
    week: date | str,
    ats: bool,
    execution: Execution | None = None,
    on_page: ProgressCallback | None = None,
) -> FetchResult:
    """Download one week's per-venue rows and ingest them as a capture.

    ``week`` may be any day of the week; ``on_page`` is called after each page has
    been spooled (and may raise, e.g. to cancel). Raises a ``FinraError`` for FINRA
    trouble or a malformed page, :class:`WeekNotPublished` when FINRA has no rows,
    and whatever the ingest raises for file-level problems; in every case nothing is
    written.
    """
    code, monday = resolve_key(tier, week)
    venue_type, _ = summary_types(ats)
    source = describe_source(
        client.config.base_url, summary_type=venue_type, tier=code, week=monday
    )
    pages = client.iter_weekly_summary(week=monday, tier=code, summary_type=venue_type)
    tracker = _Tracker(monday, on_page)
    with tempfile.TemporaryFile(prefix="spine-finra-") as spool:
        spool.writelines(api_rows_to_lines(tracker.follow(pages)))
        if tracker.rows == 0:
            raise WeekNotPublished(
                f"FINRA has no {venue_type} rows for tier {code} week {monday.isoformat()} "
                "(not published yet, or no such week)"
            )
        spool.seek(0)
        ingested = ingest_lines(
            spool, source=source, tier=code, week=monday, ats=ats, execution=execution
        )
    # FINRA has just served the week: say so on the capture that holds it.
    Capture.objects.filter(pk=ingested.capture_id).update(
        finra_served=True, finra_last_seen=utc_now().date()
    )
    return FetchResult(progress=tracker.progress(), source=source, ingest=ingested)


def published_weeks(tier: str, *, ats: bool) -> list[dict[str, Any]]:
    """The weeks FINRA has published for a tier, and the weeks held that FINRA no longer
    serves, newest first; each with the current capture that holds it (if any) and
    whether FINRA serves it (``served_by_finra``, with the last day a sync saw it)."""
    code = parse_tier(tier)
    _, summary_type = summary_types(ats)
    with finra_client() as client:
        weeks = set(client.list_weeks(tier=code, summary_type=summary_type))
    held = {c.week: c for c in Capture.objects.current().filter(tier=code, ats=ats)}
    rows = []
    for week in sorted(weeks | set(held), reverse=True):
        capture = held.get(week)
        served = week in weeks
        last_seen = capture.finra_last_seen if capture else None
        rows.append(
            {
                "week": week.isoformat(),
                "held": capture is not None,
                "capture_id": capture.pk if capture else None,
                "quality_grade": (capture.quality_grade or None) if capture else None,
                "served_by_finra": served,
                "finra_last_seen": last_seen.isoformat() if last_seen else None,
            }
        )
    return rows


class _Tracker:
    """Counts pages and rows as they pass, checks each row's week, reports progress."""

    def __init__(self, week: date, on_page: ProgressCallback | None) -> None:
        self.week = week.isoformat()
        self.on_page = on_page
        self.pages = 0
        self.rows = 0
        self.started = time.monotonic()

    def progress(self) -> FetchProgress:
        return FetchProgress(self.pages, self.rows, time.monotonic() - self.started)

    def follow(self, pages: Iterable[list[dict[str, Any]]]) -> Iterator[list[dict[str, Any]]]:
        for page in pages:
            self._check_week(page)
            yield page
            # Resumed only once the consumer has written every row of this page.
            self.pages += 1
            self.rows += len(page)
            if self.on_page is not None:
                self.on_page(self.progress())

    def _check_week(self, page: list[dict[str, Any]]) -> None:
        """The download format has no week column: a row of another week would be
        filed silently under the requested one, so it fails the page instead."""
        for number, row in enumerate(page, start=self.rows + 1):
            value = row.get("weekStartDate") if isinstance(row, dict) else None
            if value != self.week:
                raise FinraProtocolError(
                    f"API row {number}: weekStartDate is {quote(value)}, "
                    f"but week {self.week} was requested"
                )
