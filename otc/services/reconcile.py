"""Reconcile a capture's venue rows with FINRA's per-symbol totals, on its quality report."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from django.db import transaction
from django.db.models import Sum

from executions.fencing import fence
from otc.finra import FinraClient, FinraProtocolError
from otc.models import Capture, QualityReport, VenueVolume
from otc.services.quality import Verdict, save_report
from spine.text import quote
from spine.time import utc_now

__all__ = [
    "METRICS_KEY",
    "Difference",
    "Reconciliation",
    "compare",
    "iter_symbol_totals",
    "needs_reconciliation",
    "record_reconciliation",
]

#: Where the result sits in ``QualityReport.metrics``.
METRICS_KEY = "reconciliation"
#: Every warning this module adds starts so, which lets a re-run replace its own.
WARNING_PREFIX = "reconciliation with FINRA symbol totals: "
#: Differences kept in the report's metrics (largest first) and named in the warning.
KEEP_DIFFERENCES = 100
NAME_IN_WARNING = 10

_TOTAL_FIELDS = ("issueSymbolIdentifier", "totalWeeklyShareQuantity", "totalWeeklyTradeCount")

Kind = Literal["unattributed", "over"]
SymbolTotal = tuple[str, int, int]


@dataclass(frozen=True)
class Difference:
    """One symbol whose venue rows do not add up to FINRA's total (``None``: absent)."""

    symbol: str
    venue_volume: int | None
    finra_volume: int | None
    venue_trades: int | None
    finra_trades: int | None

    @property
    def volume_difference(self) -> int:
        """FINRA's total minus the venue sum: positive means unattributed volume."""
        return (self.finra_volume or 0) - (self.venue_volume or 0)

    @property
    def trade_difference(self) -> int:
        return (self.finra_trades or 0) - (self.venue_trades or 0)

    @property
    def kind(self) -> Kind:
        sign = self.volume_difference or self.trade_difference
        return "unattributed" if sign > 0 else "over"

    def as_dict(self) -> dict[str, Any]:
        return {
            "symbol": self.symbol,
            "kind": self.kind,
            "venue_volume": self.venue_volume,
            "finra_volume": self.finra_volume,
            "volume_difference": self.volume_difference,
            "venue_trades": self.venue_trades,
            "finra_trades": self.finra_trades,
            "trade_difference": self.trade_difference,
        }

    def short(self) -> str:
        return f"{self.symbol} {self.volume_difference:+,} shares/{self.trade_difference:+,} trades"


@dataclass
class Reconciliation:
    """The comparison of one capture against FINRA's totals."""

    capture_id: int
    summary_type: str
    symbols: int = 0
    differences: list[Difference] = field(default_factory=list)

    @property
    def matched(self) -> int:
        return self.symbols - len(self.differences)

    def _of(self, kind: Kind) -> list[Difference]:
        return [d for d in self.differences if d.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        """The counts and the warning (for the step's event and the pipeline's result)."""
        unattributed, over = self._of("unattributed"), self._of("over")
        return {
            "summary_type": self.summary_type,
            "symbols": self.symbols,
            "matched": self.matched,
            "differing": len(self.differences),
            "unattributed_symbols": len(unattributed),
            "unattributed_volume": sum(d.volume_difference for d in unattributed),
            "over_symbols": len(over),
            "warning": self.warning,
        }

    def report_metrics(self) -> dict[str, Any]:
        """The counts plus the largest differences, for the quality report's metrics."""
        return {
            **self.as_dict(),
            "differences": [d.as_dict() for d in self.differences[:KEEP_DIFFERENCES]],
            "differences_truncated": len(self.differences) > KEEP_DIFFERENCES,
        }

    @property
    def warning(self) -> str | None:
        """One line for the quality report's warnings, or ``None`` when all add up."""
        if not self.differences:
            return None
        unattributed, over = self._of("unattributed"), self._of("over")
        parts = []
        if unattributed:
            volume = sum(d.volume_difference for d in unattributed)
            parts.append(
                f"{len(unattributed)} with volume FINRA attributes to no venue "
                f"({volume:,} shares, e.g. de minimis firms)"
            )
        if over:
            parts.append(f"{len(over)} where the venue rows exceed or lack FINRA's total")
        named = ", ".join(d.short() for d in self.differences[:NAME_IN_WARNING])
        more = len(self.differences) - NAME_IN_WARNING
        return (
            f"{WARNING_PREFIX}{len(self.differences)} of {self.symbols} symbols differ: "
            + "; ".join(parts)
            + f" (largest: {named}"
            + (f", and {more} more)" if more > 0 else ")")
        )


def iter_symbol_totals(
    client: FinraClient, *, tier: str, week: date, summary_type: str
) -> Iterator[SymbolTotal]:
    """FINRA's per-symbol totals for a week, page by page: (symbol, shares, trades)."""
    pages = client.iter_weekly_summary(
        week=week, tier=tier, summary_type=summary_type, fields=_TOTAL_FIELDS
    )
    number = 0
    for page in pages:
        for row in page:
            number += 1
            yield _symbol_total(row, number, summary_type)


def _symbol_total(row: dict[str, Any], number: int, summary_type: str) -> SymbolTotal:
    symbol, shares, trades = (row.get(name) for name in _TOTAL_FIELDS)
    if not isinstance(symbol, str) or not symbol.strip():
        raise FinraProtocolError(f"{summary_type} row {number}: no issueSymbolIdentifier")
    for name, value in zip(_TOTAL_FIELDS[1:], (shares, trades), strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FinraProtocolError(
                f"{summary_type} row {number} ({quote(symbol)}): {name} is {quote(value)}, "
                "expected a whole number"
            )
    return symbol.strip().upper(), shares, trades


def _venue_sums(capture_id: int) -> dict[str, tuple[int, int]]:
    """Per symbol, the capture's normalized venue volume and trades (one entry per
    symbol, not per row: a few thousand pairs for the largest week)."""
    rows = (
        VenueVolume.objects.filter(capture_id=capture_id)
        .values("symbol")
        .annotate(volume=Sum("share_volume"), trades=Sum("trade_count"))
    )
    return {r["symbol"]: (int(r["volume"]), int(r["trades"])) for r in rows}


def compare(capture_id: int, totals: Iterable[SymbolTotal], *, summary_type: str) -> Reconciliation:
    """Compare the capture's venue rows per symbol with FINRA's ``totals``."""
    sums = _venue_sums(capture_id)
    result = Reconciliation(capture_id=capture_id, summary_type=summary_type)
    seen: set[str] = set()
    for symbol, shares, trades in totals:
        if symbol in seen:
            raise FinraProtocolError(f"{summary_type}: symbol {symbol} is listed twice")
        seen.add(symbol)
        venue = sums.get(symbol)
        if (venue or (0, 0)) != (shares, trades):
            volume, count = venue if venue is not None else (None, None)
            result.differences.append(Difference(symbol, volume, shares, count, trades))
    for symbol in sums.keys() - seen:
        volume, count = sums[symbol]
        if volume or count:
            result.differences.append(Difference(symbol, volume, None, count, None))
    result.symbols = len(seen | sums.keys())
    result.differences.sort(key=lambda d: (-abs(d.volume_difference), d.symbol))
    return result


def _current_report(capture_id: int) -> QualityReport | None:
    return QualityReport.objects.filter(capture_id=capture_id, replaced_at__isnull=True).first()


def needs_reconciliation(capture_id: int) -> bool:
    """Whether the capture has a passing quality report without a reconciliation yet."""
    report = _current_report(capture_id)
    return report is not None and report.passed and METRICS_KEY not in report.metrics


def record_reconciliation(result: Reconciliation) -> QualityReport | None:
    """Add the result to the capture's quality report as a new version of it.

    Reports are versioned, not edited: the current one is replaced by a copy with the
    reconciliation in ``metrics`` and its warning (replacing an earlier one from here)
    in ``warnings``. The grade is unchanged. ``None`` if the capture has no report.
    """
    with transaction.atomic():
        capture = Capture.objects.select_for_update().get(pk=result.capture_id)
        report = _current_report(capture.pk)
        if report is None:
            return None
        warnings = [w for w in report.warnings if not w.startswith(WARNING_PREFIX)]
        if result.warning:
            warnings.append(result.warning)
        verdict = Verdict(
            grade=report.grade,
            metrics={**report.metrics, METRICS_KEY: result.report_metrics()},
            warnings=warnings,
            failures=list(report.failures),
        )
        saved = save_report(capture, verdict, report.prior_capture, now=utc_now())
        fence()
    return saved
