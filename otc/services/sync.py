"""Keep the archive complete: compare FINRA's published weeks with the captures held.

The reasoning (what counts as missing or changed, the served marks) is in docs/otc.md,
"Keeping the archive complete: otc sync".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import date
from typing import Any, Literal

from executions.models import TERMINAL_STATUSES, Execution
from otc.finra import FinraClient
from otc.models import Capture, Tier
from otc.services.fetch import summary_types

__all__ = [
    "KINDS",
    "SyncItem",
    "SyncPlan",
    "datasets",
    "mark_served",
    "plan_sync",
]

FETCH_PIPELINE = "otc.fetch_week"
#: ``kinds`` values: which summaries a sync covers.
KINDS = ("all", "ats", "non_ats")
Reason = Literal["missing", "changed"]


@dataclass(frozen=True)
class SyncItem:
    """One (dataset, week) to fetch, and why."""

    tier: str
    ats: bool
    week: date
    reason: Reason
    finra_last_update: date | None = None
    capture_id: int | None = None
    held_last_update: date | None = None

    def params(self) -> dict[str, Any]:
        """``otc.fetch_week``'s params for this item."""
        return {"tier": self.tier, "week": self.week.isoformat(), "ats": self.ats}

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("week", "finra_last_update", "held_last_update"):
            data[key] = data[key].isoformat() if data[key] else None
        return data


@dataclass
class SyncPlan:
    """What a sync found: the items to fetch, and what it counted on the way."""

    items: list[SyncItem] = field(default_factory=list)
    #: Weeks FINRA lists per dataset ("T1 ATS": 52), counted from ``since``.
    published: dict[str, int] = field(default_factory=dict)
    #: (dataset, week)s already being fetched by a queued or running execution.
    in_flight: list[dict[str, Any]] = field(default_factory=list)
    #: Weeks held that FINRA no longer serves, per dataset.
    no_longer_served: dict[str, int] = field(default_factory=dict)

    @property
    def missing(self) -> int:
        return sum(item.reason == "missing" for item in self.items)

    @property
    def changed(self) -> int:
        return sum(item.reason == "changed" for item in self.items)

    def as_dict(self) -> dict[str, Any]:
        return {
            "to_fetch": len(self.items),
            "missing": self.missing,
            "changed": self.changed,
            "published": self.published,
            "in_flight": self.in_flight,
            "no_longer_served": self.no_longer_served,
            "items": [item.as_dict() for item in self.items],
        }


def label(tier: str, ats: bool) -> str:
    """A dataset's name in messages: ``T1 ATS``, ``OTC non-ATS``."""
    return f"{tier} {'ATS' if ats else 'non-ATS'}"


def datasets(tiers: Iterable[str] | None, kinds: str = "all") -> list[tuple[str, bool]]:
    """The (tier, ats) per-venue datasets a sync covers; ``tiers`` empty or None: all."""
    if kinds not in KINDS:
        raise ValueError(f"kinds={kinds!r}: must be one of {', '.join(KINDS)}")
    chosen = list(dict.fromkeys(tiers or Tier.values))
    flags = {"all": (True, False), "ats": (True,), "non_ats": (False,)}[kinds]
    return [(tier, ats) for tier in chosen for ats in flags]


def _held_last_update(capture: Capture) -> date | None:
    dates = [date.fromisoformat(d) for d in capture.last_update_dates or []]
    return max(dates) if dates else None


def _in_flight() -> set[tuple[str, bool, str]]:
    """(tier, ats, week) of every otc.fetch_week not finished yet."""
    active = Execution.objects.filter(pipeline=FETCH_PIPELINE).exclude(status__in=TERMINAL_STATUSES)
    return {
        (p.get("tier"), bool(p.get("ats")), p.get("week"))
        for p in active.values_list("params", flat=True)
    }


def mark_served(tier: str, ats: bool, served: set[date], today: date) -> int:
    """Record on the dataset's current captures whether FINRA serves their week now;
    returns how many captures FINRA no longer serves."""
    current = Capture.objects.current().filter(tier=tier, ats=ats)
    current.filter(week__in=served).update(finra_served=True, finra_last_seen=today)
    gone = current.exclude(week__in=served)
    gone.exclude(finra_served=False).update(finra_served=False)
    return gone.count()


def plan_sync(
    client: FinraClient,
    *,
    tiers: Iterable[str] | None = None,
    kinds: str = "all",
    since: date | None = None,
    today: date,
) -> SyncPlan:
    """Ask FINRA which weeks each dataset has and compare with the archive.

    A week is *missing* when no current capture holds it, *changed* when FINRA's
    ``lastUpdateDate`` is newer than every one the capture holds. Weeks already being
    fetched are left out (listed in ``in_flight``). Marks every current capture of
    the datasets as served by FINRA or not (the listing, not ``since``, decides).
    Raises a ``FinraError`` when FINRA cannot be asked; nothing is written then.
    """
    plan = SyncPlan()
    listings = []
    for tier, ats in datasets(tiers, kinds):
        venue_type, _ = summary_types(ats)
        listings.append((tier, ats, client.published_weeks(tier=tier, summary_type=venue_type)))
    busy = _in_flight()
    for tier, ats, published in listings:
        name = label(tier, ats)
        plan.no_longer_served[name] = mark_served(tier, ats, {p.week for p in published}, today)
        held = {c.week: c for c in Capture.objects.current().filter(tier=tier, ats=ats)}
        wanted = [p for p in published if since is None or p.week >= since]
        plan.published[name] = len(wanted)
        for entry in sorted(wanted, key=lambda p: p.week):
            capture = held.get(entry.week)
            held_update = _held_last_update(capture) if capture else None
            if capture is None:
                reason: Reason = "missing"
            elif entry.last_update and (held_update is None or entry.last_update > held_update):
                reason = "changed"
            else:
                continue
            if (tier, ats, entry.week.isoformat()) in busy:
                plan.in_flight.append({"dataset": name, "week": entry.week.isoformat()})
                continue
            plan.items.append(
                SyncItem(
                    tier=tier,
                    ats=ats,
                    week=entry.week,
                    reason=reason,
                    finra_last_update=entry.last_update,
                    capture_id=capture.pk if capture else None,
                    held_last_update=held_update,
                )
            )
    return plan
