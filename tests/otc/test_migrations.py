"""Migration 0008 (staged captures) maps existing captures forwards and backwards."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="migrations run on PostgreSQL"),
]

BEFORE = [("otc", "0007_line_keyed_rows")]
AFTER = [("otc", "0008_staged_captures")]
T0 = datetime(2025, 12, 20, tzinfo=UTC)


def migrate(targets: list[tuple[str, str]]) -> Any:
    """Migrate to ``targets``; the historical app registry there."""
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture
def old_apps() -> Iterator[Any]:
    executor = MigrationExecutor(connection)
    latest = executor.loader.graph.leaf_nodes()
    apps = migrate(BEFORE)
    yield apps
    migrate(latest)


def test_existing_captures_are_mapped_to_states_and_back(old_apps: Any) -> None:
    capture = old_apps.get_model("otc", "Capture")

    def make(week: date, hours: int, **fields: Any) -> Any:
        values = {"tier": "OTC", "week": week, "source": "f", "checksum": f"c{week}{hours}"}
        return capture.objects.create(ingested_at=T0 + timedelta(hours=hours), **values, **fields)

    computed = {"computed_at": T0, "quality_grade": "A"}
    w1, w2 = date(2025, 12, 1), date(2025, 12, 8)
    # Week 1: a correction superseded the first capture; both computed.
    first = make(w1, 0, **computed, superseded_at=T0 + timedelta(hours=1))
    corrected = make(w1, 1, **computed)
    capture.objects.filter(pk=first.pk).update(superseded_by=corrected)
    # Week 2: a good capture superseded by one graded F, then by one never computed.
    good = make(w2, 0, **computed, superseded_at=T0 + timedelta(hours=1))
    graded_f = make(w2, 1, quality_grade="F", superseded_at=T0 + timedelta(hours=2))
    half_made = make(w2, 2)
    capture.objects.filter(pk=good.pk).update(superseded_by=graded_f)
    capture.objects.filter(pk=graded_f.pk).update(superseded_by=half_made)

    apps = migrate(AFTER)
    rows = {
        c.pk: (c.state, c.promoted_at, c.superseded_at, c.superseded_by_id)
        for c in apps.get_model("otc", "Capture").objects.all()
    }
    assert rows == {
        first.pk: ("superseded", first.ingested_at, corrected.ingested_at, corrected.pk),
        corrected.pk: ("current", corrected.ingested_at, None, None),
        good.pk: ("current", good.ingested_at, None, None),
        graded_f.pk: ("rejected", None, None, None),
        half_made.pk: ("failed", None, None, None),
    }
    assert apps.get_model("otc", "Capture").objects.get(pk=half_made.pk).failure

    apps = migrate(BEFORE)
    back = {
        c.pk: (c.superseded_at, c.superseded_by_id)
        for c in apps.get_model("otc", "Capture").objects.all()
    }
    assert back == {
        first.pk: (corrected.ingested_at, corrected.pk),
        corrected.pk: (None, None),
        good.pk: (None, None),
        graded_f.pk: (graded_f.ingested_at, None),
        half_made.pk: (half_made.ingested_at, None),
    }
