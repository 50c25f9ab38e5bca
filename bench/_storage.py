"""What the OTC data takes on disk, read from PostgreSQL's catalog and the archive storage.

Nothing here names a table: the OTC tables are the ``otc_`` ones of the schema and
every partition below them, so the figures hold whatever layout the migrations made.
"""

from __future__ import annotations

from typing import Any

#: Every table named ``otc_…`` that is not itself a partition, with the partitions
#: (at any depth) below it; each relation once, tagged with its top-level table.
_OTC_RELATIONS = r"""
    WITH RECURSIVE tree(oid, root) AS (
        SELECT c.oid, c.relname::text
          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
           AND c.relname LIKE 'otc\_%' AND NOT c.relispartition
        UNION
        SELECT i.inhrelid, t.root FROM pg_inherits i JOIN tree t ON i.inhparent = t.oid
    )
"""

#: Bytes per top-level table: heap, indexes, TOAST and free-space/visibility maps of
#: the table and all its partitions (a partitioned parent has no storage of its own).
_BYTES_BY_TABLE = (
    _OTC_RELATIONS
    + """
    SELECT root, SUM(pg_total_relation_size(oid))::bigint, SUM(pg_indexes_size(oid))::bigint,
           COUNT(*) - 1
      FROM tree GROUP BY root ORDER BY root
"""
)

_ROOTS = r"""
    SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
       AND c.relname LIKE 'otc\_%' AND NOT c.relispartition
     ORDER BY c.relname
"""


def otc_tables(cursor: Any) -> list[str]:
    """The OTC tables that are not partitions (``TRUNCATE`` of one empties its partitions)."""
    cursor.execute(_ROOTS)
    return [name for (name,) in cursor.fetchall()]


def otc_table_bytes(cursor: Any) -> dict[str, dict[str, int]]:
    """``{table: {"bytes", "index_bytes", "partitions"}}`` for every OTC table."""
    cursor.execute(_BYTES_BY_TABLE)
    return {
        root: {"bytes": int(total), "index_bytes": int(indexes), "partitions": int(parts)}
        for root, total, indexes, parts in cursor.fetchall()
    }


def otc_bytes(cursor: Any) -> int:
    """All OTC tables' bytes, partitions, indexes and TOAST included."""
    return sum(table["bytes"] for table in otc_table_bytes(cursor).values())


def archive_objects(storage: Any, directory: str = "") -> dict[str, int]:
    """``{name: size}`` of every object under ``directory`` of a Django storage
    (filesystem or S3 alike, through ``listdir`` and ``size``)."""
    try:
        directories, files = storage.listdir(directory)
    except FileNotFoundError:
        return {}
    prefix = f"{directory}/" if directory else ""
    found = {f"{prefix}{name}": storage.size(f"{prefix}{name}") for name in files}
    for name in directories:
        found |= archive_objects(storage, f"{prefix}{name}")
    return found
