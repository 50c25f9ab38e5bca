"""Symbols and MPIDs compare bytewise on PostgreSQL, as they do on SQLite.

SQLite's default collation is already bytewise (BINARY). On PostgreSQL the database
default (e.g. ``C.UTF-8`` or ``en_US.UTF-8``) sorts and groups text through the C
library, which is several times slower on the million-row sorts and index builds of
the data path, and can order symbols differently from SQLite. ``COLLATE "C"`` on the
key columns makes both databases agree and the hot path fast. Django's field
definitions do not declare it (a declared ``db_collation`` would break SQLite), so a
later ``AlterField`` on these columns must keep it.
"""

from django.db import migrations

BYTEWISE_COLUMNS = {
    "otc_rawrow": ("symbol", "mpid"),
    "otc_venuevolume": ("symbol", "mpid"),
    "otc_venue": ("mpid",),
    "otc_symbolweeksummary": ("symbol", "top_venue_mpid"),
    "otc_venuemarketshare": ("mpid",),
    "otc_symbolrolling": ("symbol",),
    "otc_venuerolling": ("mpid",),
}


def _collate(collation: str):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for table, columns in BYTEWISE_COLUMNS.items():
            for column in columns:
                schema_editor.execute(
                    f'ALTER TABLE "{table}" ALTER COLUMN "{column}" TYPE text COLLATE {collation}'
                )

    return apply


class Migration(migrations.Migration):
    dependencies = [("otc", "0001_initial")]

    operations = [migrations.RunPython(_collate('"C"'), _collate('"default"'))]
