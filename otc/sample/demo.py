"""Demo support: the generated weeks the ``demo`` command runs, placed in the inbox."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model

from otc import inbox
from otc.sample.generator import generate_week, generate_weeks, week_file_name

__all__ = ["ADMIN_USER", "DEMO_DIR", "DemoPlan", "deliver_late", "ensure_superuser", "plan_weeks"]

#: Under the inbox by default; files written elsewhere are copied into ``demo/`` of it.
DEMO_DIR = "demo"
ADMIN_USER = "admin"


@dataclass(frozen=True)
class DemoPlan:
    """The weeks to run now (week, file) and the newest one, whose file comes late."""

    out: Path
    on_time: list[tuple[date, Path]]
    late: tuple[date, Path] | None


def plan_weeks(
    *,
    tier: str,
    ats: bool,
    newest: date,
    weeks: int,
    rows: int,
    seed: int,
    out: Path | None,
    late: bool,
) -> DemoPlan:
    """Generate ``weeks`` weeks of the ATS or the non-ATS summary ending at ``newest``
    (their names say which); with ``late`` (and more than one week) the newest file is
    left unwritten, to "arrive" after its run has failed."""
    first = newest - timedelta(weeks=weeks - 1)
    directory = (out or inbox.inbox_dir() / DEMO_DIR).expanduser()
    late = late and weeks > 1
    on_time = weeks - 1 if late else weeks
    paths = generate_weeks(
        directory, tier=tier, start_week=first, weeks=on_time, rows=rows, seed=seed, ats=ats
    )
    plan = [(first + timedelta(weeks=i), p.resolve()) for i, p in enumerate(paths)]
    late_week = None
    if late:
        late_week = (newest, (directory / week_file_name(tier, newest, ats=ats)).resolve())
        late_week[1].unlink(missing_ok=True)
    return DemoPlan(out=directory, on_time=plan, late=late_week)


def deliver_late(path: Path, *, tier: str, ats: bool, week: date, rows: int, seed: int) -> str:
    """Write the late week's file now and place it in the inbox; its inbox path."""
    generate_week(path, tier=tier, week=week, rows=rows, seed=seed, ats=ats)
    return to_inbox(path)


def to_inbox(path: Path) -> str:
    """The inbox path the pipeline reads ``path`` from: where it is, for a file inside
    the inbox; else ``demo/<name>``, copied there when it exists (and removed from
    there when it does not)."""
    root = inbox.inbox_dir()
    real = path.resolve()
    if root in real.parents:
        return inbox.check_relative(str(real.relative_to(root)))
    relative = f"{DEMO_DIR}/{path.name}"
    if path.is_file():
        with inbox.open_regular(path) as handle:
            inbox.store_stream(inbox.read_chunks(handle), path.name, exact=relative)
    else:  # not arrived where it is written: nor in the inbox (an earlier run's copy)
        inbox.remove(relative)
    return relative


def ensure_superuser(*, debug: bool) -> dict[str, Any]:
    """Create ``admin`` with a random password (DEBUG installs only), once."""
    users = get_user_model()._default_manager
    if users.filter(username=ADMIN_USER).exists():
        return {"username": ADMIN_USER, "password": None, "created": False}
    if not debug:
        return {"username": None, "password": None, "created": False}
    password = secrets.token_urlsafe(12)
    users.create_superuser(ADMIN_USER, email="", password=password)
    return {"username": ADMIN_USER, "password": password, "created": True}
