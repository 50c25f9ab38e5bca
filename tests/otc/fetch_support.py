"""Data and helpers for the ``otc.fetch_week`` tests (pipeline, commands, health).

The fake FINRA (``finra_server``) serves per-venue rows and the per-symbol totals
that go with them; ``fetch`` dispatches the pipeline as the ``otc fetch`` command does.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from executions.dispatcher import dispatch
from executions.models import Execution
from tests.otc import finra_server as fake

WEEK = date(2025, 12, 1)  # a Monday
PAGE_SIZE = 10
ROWS = 63  # 9 symbols x 7 venues: 6 pages of 10 and one of 3
Row = dict[str, Any]


def venue_rows(count: int = ROWS, *, week: date = WEEK) -> list[Row]:
    """T1 ATS per-venue rows (ATS_W_SMBL_FIRM), sorted by symbol and MPID."""
    return fake.weekly_rows(count, week=week, tier="T1", summary_type="ATS_W_SMBL_FIRM")


def symbol_totals(rows: list[Row], *, summary_type: str = "ATS_W_SMBL") -> list[Row]:
    """FINRA's per-symbol rows that agree with ``rows``."""
    totals: dict[str, Row] = {}
    for row in rows:
        total = totals.setdefault(
            row["issueSymbolIdentifier"],
            {
                **{k: v for k, v in row.items() if k not in ("MPID", "marketParticipantName")},
                "summaryTypeCode": summary_type,
                "totalWeeklyShareQuantity": 0,
                "totalWeeklyTradeCount": 0,
            },
        )
        total["totalWeeklyShareQuantity"] += row["totalWeeklyShareQuantity"]
        total["totalWeeklyTradeCount"] += row["totalWeeklyTradeCount"]
    return list(totals.values())


def publish(finra: Any, rows: list[Row], totals: list[Row] | None = None) -> None:
    """Serve per-venue rows and (matching, unless given) symbol totals."""
    finra.serve("weeklySummary", rows + (symbol_totals(rows) if totals is None else totals))


def fetch(week: date | str = WEEK, **params: Any) -> Execution:
    """Dispatch ``otc.fetch_week`` (T1 ATS unless told) from the CLI trigger; on the
    local backend the returned execution has already run."""
    params = {"tier": "T1", "week": str(week), "ats": True, **params}
    return dispatch("otc.fetch_week", params, trigger_source="cli")


def events(execution: Execution, kind: str) -> list[dict[str, Any]]:
    """The data of an execution's events of one type, in order."""
    return [e.data for e in execution.events.filter(type=kind).order_by("timestamp", "id")]
