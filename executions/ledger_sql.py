"""Status transitions and their events in one PostgreSQL statement each."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection

from executions.models import Execution, ExecutionEvent, ExecutionStatus


def available() -> bool:
    return connection.vendor == "postgresql"


def transition(
    execution_id: object,
    *,
    from_statuses: Iterable[str],
    to_status: str,
    changes: Mapping[str, Any],
    expect: Mapping[str, Any],
    event_type: str,
    data: Mapping[str, Any],
    timestamp: datetime,
) -> bool:
    """Apply the transition if the row allows it; True when it was applied."""
    table = connection.ops.quote_name(Execution._meta.db_table)
    events = connection.ops.quote_name(ExecutionEvent._meta.db_table)
    sets, set_params = [], []
    for name, value in changes.items():
        field = Execution._meta.get_field(name)
        sets.append(f"{connection.ops.quote_name(field.column)} = %s")
        set_params.append(field.get_db_prep_save(value, connection))
    conditions, condition_params = [], []
    for name, value in expect.items():
        field = Execution._meta.get_field(name)
        column = f"e.{connection.ops.quote_name(field.column)}"
        if value is None:
            conditions.append(f"{column} IS NULL")
        else:
            conditions.append(f"{column} = %s")
            condition_params.append(field.get_db_prep_value(value, connection))
    sources = list(from_statuses)
    if len(sources) == 1:
        # One possible source: the event's "from" is known, and the UPDATE re-checks
        # the status on the row it locks, so no separate locking read is needed.
        where = " AND ".join(["e.status = %s", *conditions])
        target = f"UPDATE {table} AS e SET {', '.join(sets)} WHERE e.id = %s AND {where}"
        returning = "RETURNING e.id, %s::text AS from_status"
        source_params: list[Any] = [execution_id, sources[0], *condition_params, sources[0]]
    else:
        where = " AND ".join(["e.status = ANY(%s)", *conditions])
        target = f"""UPDATE {table} AS e SET {", ".join(sets)}
            FROM (SELECT id, status FROM {table} WHERE id = %s FOR UPDATE) AS prev
            WHERE e.id = prev.id AND {where}"""
        returning = "RETURNING e.id, prev.status AS from_status"
        source_params = [execution_id, sources, *condition_params]
    sql = f"""
        WITH moved AS ({target} {returning})
        INSERT INTO {events} (execution_id, type, timestamp, data)
        SELECT id, %s, %s, jsonb_build_object('from', from_status, 'to', %s::text) || %s::jsonb
        FROM moved
        RETURNING execution_id
    """  # noqa: S608 - identifiers come from the model, values are parameters
    params = [
        *set_params,
        *source_params,
        event_type,
        timestamp,
        to_status,
        json.dumps(dict(data), cls=DjangoJSONEncoder),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone() is not None


def claim_queued(
    execution_id: object,
    *,
    run_token: object,
    now: datetime,
    due_by: datetime,
    data: Mapping[str, Any],
) -> Execution | None:
    """Start a queued, lock-free, due execution in one statement; the started row or None.

    The common delivery needs no decision the row cannot make itself, so the read,
    the move to running and the ``started`` event are one round trip. Anything else
    (pending, early, not runnable, a lock key) returns None for the runner's full path.
    """
    table = connection.ops.quote_name(Execution._meta.db_table)
    events = connection.ops.quote_name(ExecutionEvent._meta.db_table)
    fields = Execution._meta.concrete_fields
    columns = ", ".join(f"e.{connection.ops.quote_name(f.column)}" for f in fields)
    sql = f"""
        WITH moved AS (
            UPDATE {table} AS e
            SET status = %s, started_at = %s, heartbeat_at = %s, finished_at = NULL,
                run_token = %s, run_after = NULL
            WHERE e.id = %s AND e.status = %s AND e.lock_key = ''
              AND (e.run_after IS NULL OR e.run_after <= %s)
            RETURNING {columns}
        ), started AS (
            INSERT INTO {events} (execution_id, type, timestamp, data)
            SELECT id, 'started', %s, jsonb_build_object(
                'from', %s::text, 'to', %s::text, 'attempt', attempt,
                'submission', submissions, 'redeliveries', redeliveries
            ) || %s::jsonb
            FROM moved
        )
        SELECT * FROM moved
    """  # noqa: S608 - identifiers come from the models, values are parameters
    params = [
        ExecutionStatus.RUNNING,
        now,
        now,
        run_token,
        execution_id,
        ExecutionStatus.QUEUED,
        due_by,
        now,
        ExecutionStatus.QUEUED,
        ExecutionStatus.RUNNING,
        json.dumps(dict(data), cls=DjangoJSONEncoder),
    ]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    values = [
        f.from_db_value(value, None, connection) if hasattr(f, "from_db_value") else value
        for f, value in zip(fields, row, strict=True)
    ]
    # Built from the returned row as a queryset would, without the raw-query machinery.
    return Execution.from_db(connection.alias, [f.attname for f in fields], values)
