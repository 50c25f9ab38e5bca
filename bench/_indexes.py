#!/usr/bin/env python
"""Which analytics index serves which query: the API's, the admin's and compute's, EXPLAINed.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/spine .venv/bin/python bench/_indexes.py

Runs on ``bench/console.py``'s database (``<name>_console``: load it there first). It
sends the OTC API's and the admin's requests with Django's test client as a
superuser and recomputes one week's capture (in a transaction rolled back at the
end), and runs ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement that reads or
writes an analytics table, just before the statement itself (a write's EXPLAIN in
a savepoint rolled back). It prints each index of the analytics tables with its
size and the statements whose plans use it (the plan line), then the sequential
scans of those tables. docs/otc.md ("Indexes of the analytics tables") records the
figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLES = (
    "otc_symbolweeksummary",
    "otc_venuemarketshare",
    "otc_symbolrolling",
    "otc_venuerolling",
    "otc_qualityreport",
)
_TOUCHES = re.compile("|".join(TABLES))
_USES = re.compile(
    r"(?:Index Only Scan|Index Scan|Bitmap Index Scan)(?: Backward)? (?:using|on) (\S+)"
)
_SEQ = re.compile(r"Seq Scan on (otc_\w+)")


class Explainer:
    """An execute wrapper: EXPLAIN (ANALYZE, BUFFERS) of each analytics statement."""

    def __init__(self) -> None:
        self.label = ""
        self.plans: list[dict[str, Any]] = []
        self._inside = False

    def __call__(self, execute: Callable, sql: str, params: Any, many: bool, context: Any) -> Any:
        if not self._inside and not many and _TOUCHES.search(sql):
            self._explain(context["connection"], sql, params)
        return execute(sql, params, many, context)

    def _explain(self, connection: Any, sql: str, params: Any) -> None:
        verb = sql.lstrip().split(None, 1)[0].upper()
        if verb not in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            return
        writes = verb != "SELECT"
        if writes and not connection.in_atomic_block:
            return
        self._inside = True
        try:
            with connection.cursor() as cursor:
                if writes:
                    cursor.execute("SAVEPOINT bench_explain")
                cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", params)
                lines = [row[0] for row in cursor.fetchall()]
                if writes:
                    cursor.execute("ROLLBACK TO SAVEPOINT bench_explain")
        finally:
            self._inside = False
        self.plans.append({"label": self.label, "sql": " ".join(sql.split()), "plan": lines})


def requests(client: Any) -> list[tuple[str, str]]:
    """(label, URL) of the API's and the admin's reads of the analytics tables."""
    from otc.models import Capture, SymbolWeekSummary, VenueMarketShare

    capture = Capture.objects.current().filter(tier="T1").order_by("-week").first()
    if capture is None:
        sys.exit("no current T1 capture: load the database with bench/console.py first")
    week = capture.week.isoformat()
    first = (capture.week.replace(month=1, day=1)).isoformat()
    symbol = (
        SymbolWeekSummary.objects.filter(capture=capture).order_by("-total_volume").first().symbol
    )
    mpid = VenueMarketShare.objects.filter(capture=capture).order_by("rank").first().mpid
    api = "/api/v1/otc"
    key = f"tier=T1&week={week}"
    return [
        ("API symbols of a week", f"{api}/symbols/?{key}"),
        ("API symbols of a week by symbol", f"{api}/symbols/?{key}&ordering=symbol"),
        ("API symbols of a week by HHI", f"{api}/symbols/?{key}&ordering=-hhi"),
        ("API symbols of a week, page 5", f"{api}/symbols/?{key}&page=5"),
        ("API symbols, latest week", f"{api}/symbols/?tier=T1"),
        ("API symbols, every tier", f"{api}/symbols/?week={week}"),
        ("API symbols, search", f"{api}/symbols/?{key}&search=AA"),
        ("API symbols as of", f"{api}/symbols/?{key}&as_of=2099-01-01T00:00:00Z"),
        ("API symbol weekly", f"{api}/symbols/{symbol}/weekly/?tier=T1&from={first}&to={week}"),
        ("API symbol weekly, all", f"{api}/symbols/{symbol}/weekly/"),
        ("API symbol weekly, unknown", f"{api}/symbols/ZZZZZZ/weekly/"),
        ("API symbol venues", f"{api}/symbols/{symbol}/venues/?{key}"),
        ("API symbol venues, latest", f"{api}/symbols/{symbol}/venues/"),
        ("API symbol rolling", f"{api}/symbols/{symbol}/rolling/?{key}"),
        (
            "API symbol rolling as of",
            f"{api}/symbols/{symbol}/rolling/?{key}&as_of=2099-01-01T00:00:00Z",
        ),  # fmt: skip
        ("API venues of a week", f"{api}/venues/?{key}"),
        ("API venues of a week by volume", f"{api}/venues/?{key}&sort=-volume"),
        ("API venues, every tier", f"{api}/venues/?week={week}"),
        ("API venues as of", f"{api}/venues/?{key}&as_of=2099-01-01T00:00:00Z"),
        ("API venue history", f"{api}/venues/{mpid}/?tier=T1&from={first}&to={week}"),
        ("API venue history, all", f"{api}/venues/{mpid}/"),
        ("API quality", f"{api}/quality/"),
        ("API quality of a week", f"{api}/quality/?{key}"),
        ("API quality grade", f"{api}/quality/?grade=A"),
        ("API quality as of", f"{api}/quality/?as_of=2099-01-01T00:00:00Z"),
        ("API weeks", f"{api}/weeks/"),
        ("API weeks as of", f"{api}/weeks/?as_of=2099-01-01T00:00:00Z"),
        ("API capture", f"{api}/captures/{capture.pk}/"),
        *_admin_requests(capture, symbol, mpid),
    ]


def _admin_requests(capture: Any, symbol: str, mpid: str) -> list[tuple[str, str]]:
    from django.urls import reverse

    from otc.models import (
        QualityReport,
        SymbolRolling,
        SymbolWeekSummary,
        VenueMarketShare,
        VenueRolling,
    )

    found = []
    week = capture.week.isoformat()
    for model, key in (
        ("symbolweeksummary", symbol),
        ("venuemarketshare", mpid),
        ("symbolrolling", symbol),
        ("venuerolling", mpid),
        ("qualityreport", None),
    ):
        url = reverse(f"admin:otc_{model}_changelist")
        found += [
            (f"admin {model} list", url),
            (f"admin {model} week", f"{url}?week={week}"),
            (f"admin {model} capture", f"{url}?capture={capture.pk}"),
            (f"admin {model} tier", f"{url}?tier__exact=T1"),
        ]
        if key:
            found.append((f"admin {model} search", f"{url}?q={key}"))
            found.append((f"admin {model} search prefix", f"{url}?q={key[:2]}"))
        if model in {"symbolweeksummary", "venuemarketshare"}:
            found.append((f"admin {model} current", f"{url}?current=yes"))
        if model in {"symbolrolling", "venuerolling", "qualityreport"}:
            found.append((f"admin {model} version", f"{url}?version=current"))
    found.append((
        "admin qualityreport grade",
        reverse("admin:otc_qualityreport_changelist") + "?grade__exact=A",
    ))  # fmt: skip
    for model in (SymbolWeekSummary, VenueMarketShare, SymbolRolling, VenueRolling, QualityReport):
        row = model.objects.filter(capture=capture).first()
        if row is not None:
            name = model._meta.model_name
            found.append(
                (f"admin {name} detail", reverse(f"admin:otc_{name}_change", args=[row.pk]))
            )
    found.append(("admin capture detail", reverse("admin:otc_capture_change", args=[capture.pk])))
    return found


def recompute(explainer: Explainer) -> None:
    """Compute the newest T1 week again and a week five weeks earlier (its rolling
    refresh reaches the following weeks), rolled back."""
    from django.db import transaction

    from otc.models import Capture
    from otc.services import compute_capture

    weeks = list(Capture.objects.current().filter(tier="T1").order_by("-week")[:6])
    for label, capture in (("compute newest week", weeks[0]), ("compute, refresh", weeks[-1])):
        explainer.label = label
        with transaction.atomic():
            compute_capture(capture.pk)
            transaction.set_rollback(True)


def analytics_indexes() -> list[dict[str, Any]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.relname, i.relname, pg_relation_size(i.oid), pg_get_indexdef(i.oid)"
            "  FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid"
            "  JOIN pg_class t ON t.oid = x.indrelid WHERE t.relname = ANY(%s)"
            " ORDER BY t.relname, i.relname",
            [list(TABLES)],
        )
        return [
            {"table": t, "index": i, "bytes": size, "definition": d}
            for t, i, size, d in cursor.fetchall()
        ]


def table_sizes() -> dict[str, tuple[int, int]]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT relname, reltuples::bigint, pg_relation_size(oid) FROM pg_class"
            " WHERE relname = ANY(%s)",
            [list(TABLES)],
        )
        return {name: (rows, size) for name, rows, size in cursor.fetchall()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print every plan as JSON")
    parser.add_argument(
        "--drop", default="", help="comma-separated indexes dropped for the run (rolled back)"
    )
    parser.add_argument(
        "--times", action="store_true", help="print each request's analytics execution time"
    )
    args = parser.parse_args()
    from bench.console import bench_database_url

    os.environ["DATABASE_URL"] = bench_database_url()
    os.environ.pop("REDIS_URL", None)
    os.environ["EXECUTION_BACKEND"] = "local"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "spine.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User
    from django.db import connection, transaction
    from django.test import Client

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
    user = User.objects.filter(username="bench").first() or User.objects.create_superuser(
        "bench", "bench@example.com", "bench-password-123"
    )
    client = Client()
    client.force_login(user)
    explainer = Explainer()
    todo = requests(client)
    dropped = [name.strip() for name in args.drop.split(",") if name.strip()]
    with transaction.atomic(), connection.execute_wrapper(explainer):
        with connection.cursor() as cursor:
            for name in dropped:
                cursor.execute(f'DROP INDEX "{name}"')
        for label, url in todo:
            explainer.label = label
            response = client.get(url)
            if response.status_code not in (200, 404):
                print(f"  {label}: HTTP {response.status_code} {url}", file=sys.stderr)
        recompute(explainer)
        transaction.set_rollback(True)  # the dropped indexes come back
    if args.times:
        spent: dict[str, float] = defaultdict(float)
        for plan in explainer.plans:
            for line in plan["plan"]:
                if line.startswith("Execution Time:"):
                    spent[plan["label"]] += float(line.split()[2])
        for label, ms in spent.items():
            print(f"{label:<45} {ms:9.2f} ms")
        return
    if args.json:
        print(json.dumps(explainer.plans, indent=1))
        return
    used: dict[str, list[tuple[str, str]]] = defaultdict(list)
    seqs: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for plan in explainer.plans:
        for line in plan["plan"]:
            for index in _USES.findall(line):
                used[index].append((plan["label"], line.strip()))
            for table in _SEQ.findall(line):
                if table in TABLES:
                    seqs[table].append((plan["label"], line.strip()))
    sizes = table_sizes()
    print(
        "tables: " + ", ".join(f"{t} {r:,} rows {b / 1e6:,.1f} MB" for t, (r, b) in sizes.items())
    )
    total_unused = 0
    for index in analytics_indexes():
        users = used.get(index["index"], [])
        if not users:
            total_unused += index["bytes"]
        print(f"\n{index['index']} ({index['bytes'] / 1e6:,.1f} MB): {index['definition']}")
        seen: set[str] = set()
        for label, line in users:
            if label not in seen:
                seen.add(label)
                print(f"    {label}: {line}")
        if not users:
            print("    UNUSED by every query above")
    print(f"\nunused indexes: {total_unused / 1e6:,.1f} MB")
    for table, lines in seqs.items():
        print(f"\nseq scans of {table}:")
        seen = set()
        for label, line in lines:
            if label not in seen:
                seen.add(label)
                print(f"    {label}: {line}")


if __name__ == "__main__":
    main()
