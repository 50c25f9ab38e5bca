"""The reporting weeks Market Spine accepts: from FINRA's first, in 2014, to the current one."""

from __future__ import annotations

from datetime import date

from spine.time import current_week, parse_date, week_start

__all__ = ["FIRST_WEEK", "reporting_week"]

#: The first reporting week (its Monday) of 2014, the year FINRA's OTC transparency
#: data starts; earlier weeks hold no FINRA data.
FIRST_WEEK = date(2014, 1, 6)


def reporting_week(day: date | str) -> date:
    """The Monday of ``day``'s week, if FINRA can have data for it by now.

    Raises ``ValueError`` with a one-line reason for a week before :data:`FIRST_WEEK`
    or after the current week (the current week itself is accepted).
    """
    given = parse_date(day)
    monday = week_start(given)
    named = f"week {monday}" if given == monday else f"{given} (week {monday})"
    if monday < FIRST_WEEK:
        raise ValueError(f"{named} is before {FIRST_WEEK}, FINRA's first reporting week")
    current = current_week()
    if monday > current:
        raise ValueError(f"{named} is in the future: the current week is {current}")
    return monday
