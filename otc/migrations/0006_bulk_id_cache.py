"""PostgreSQL: hand out ids of the bulk tables from a per-session cache of 1,000.

A million-row ingest or normalization otherwise takes a sequence lock (and every 32
values writes WAL) once per row; with a cache each session reserves blocks of ids.
Ids stay unique and increasing within a load; a session that ends leaves a gap,
which nothing relies on. SQLite has no sequences to tune.
"""

from django.db import migrations

BULK_TABLES = ("otc_rawrow", "otc_venuevolume", "otc_symbolweeksummary", "otc_symbolrolling")


def _cache(size: int):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table in BULK_TABLES:
            schema_editor.execute(f'ALTER TABLE "{table}" ALTER COLUMN "id" SET CACHE {size}')

    return apply


class Migration(migrations.Migration):
    dependencies = [("otc", "0005_symbol_summary_capture_volume_index")]

    operations = [migrations.RunPython(_cache(1000), _cache(1))]
