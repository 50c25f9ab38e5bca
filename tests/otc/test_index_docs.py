"""The analytics tables' indexes are exactly those docs/otc.md lists, each with its query."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.db import connection, models

from otc.models import (
    QualityReport,
    SymbolRolling,
    SymbolWeekSummary,
    VenueMarketShare,
    VenueRolling,
)

DOC = Path(__file__).resolve().parents[2] / "docs" / "otc.md"
SECTION = "## Indexes of the analytics tables"
ANALYTICS = (SymbolWeekSummary, VenueMarketShare, SymbolRolling, VenueRolling, QualityReport)
TABLES = {model._meta.db_table for model in ANALYTICS}


def documented_rows() -> list[list[str]]:
    """The rows of the section's table: table, index, columns, query, plan line."""
    text = DOC.read_text(encoding="utf-8")
    assert SECTION in text, f"docs/otc.md has no {SECTION!r} section"
    section = re.split(r"\n## ", text.split(SECTION, 1)[1], maxsplit=1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if cells[0].strip("`") in TABLES:
            rows.append(cells)
    return rows


def documented() -> dict[str, set[str]]:
    found: dict[str, set[str]] = {table: set() for table in TABLES}
    for cells in documented_rows():
        found[cells[0].strip("`")].add(cells[1].strip("`"))
    return found


def declared(model: type[models.Model]) -> set[str]:
    """Every index the model asks for: the primary key, ``Meta.indexes``, unique
    constraints, and any field-level index (named ``<column> (field index)``)."""
    meta = model._meta
    names = {f"{meta.db_table}_pkey"}
    names |= {index.name for index in meta.indexes}
    names |= {c.name for c in meta.constraints if isinstance(c, models.UniqueConstraint)}
    for field in meta.local_fields:
        if not field.primary_key and (field.db_index or field.unique):
            names.add(f"{field.column} (field index)")
    return names


@pytest.mark.embedded
def test_every_documented_row_names_its_query_and_plan() -> None:
    rows = documented_rows()
    assert rows, "the index section lists no index"
    for cells in rows:
        assert len(cells) == 5, f"expected table | index | columns | query | plan: {cells}"
        _table, index, columns, query, plan = cells
        index = index.strip("`")
        assert columns and query, f"{index}: no columns or query"
        assert re.search(
            rf"(Index (Only )?Scan( Backward)? using|Bitmap Index Scan on) {index}\b", plan
        ), f"{index}: the plan cell shows no scan of this index"


@pytest.mark.embedded
@pytest.mark.parametrize("model", ANALYTICS, ids=lambda model: model.__name__)
def test_the_models_indexes_are_the_documented_ones(model: type[models.Model]) -> None:
    table = model._meta.db_table
    listed, asked = documented()[table], declared(model)
    assert asked - listed == set(), f"{table}: indexes not in docs/otc.md ({SECTION[3:]})"
    assert listed - asked == set(), f"{table}: docs/otc.md lists indexes the model lacks"


@pytest.mark.django_db
@pytest.mark.parametrize("model", ANALYTICS, ids=lambda model: model.__name__)
def test_the_databases_indexes_are_the_documented_ones(model: type[models.Model]) -> None:
    """PostgreSQL after every migration: no index added by SQL behind the models' back."""
    table = model._meta.db_table
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    listed = documented()[table]
    indexes = set()
    for name, info in constraints.items():
        if not (info["index"] or info["unique"] or info["primary_key"]):
            continue
        # Django names a field's own index <table>_<column>_<hash>: the doc's
        # "<column> (field index)".
        field = f"{info['columns'][0]} (field index)" if len(info["columns"]) == 1 else ""
        indexes.add(field if name not in listed and field in listed else name)
    assert indexes - listed == set(), f"{table}: indexes not in docs/otc.md ({SECTION[3:]})"
    assert listed - indexes == set(), f"{table}: docs/otc.md lists indexes the database lacks"
