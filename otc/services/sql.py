"""Portable SQL building blocks shared by the OTC services."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.db import connection

#: Decimal places of every percentage, average and HHI Market Spine stores.
SCALE = 4
_FACTOR = 10**SCALE
#: The most shares (and trades) one capture may total: ``(2 * 10**6 + 1) * this`` and
#: six weeks of it times ``2 * 10**4`` stay below 2**63.
MAX_CAPTURE_VOLUME = 4_000_000_000_000


def vendor() -> str:
    """``"postgresql"`` or ``"sqlite"``: the default database's dialect."""
    return connection.vendor


def round_div_scaled(numerator: str, denominator: str, *, times: int = 1) -> str:
    """SQL for ``numerator * times / denominator`` rounded half up, as an integer
    scaled by ``10**SCALE``. Operands must be non-negative integer expressions and the
    denominator must be positive (callers guard zero with ``CASE``)."""
    factor = _FACTOR * times
    return f"((2 * ({numerator}) * {factor} + ({denominator})) / (2 * ({denominator})))"


def unscale(scaled: str) -> str:
    """SQL turning an integer scaled by ``10**SCALE`` into the decimal it stands for."""
    return f"(({scaled}) * 0.{'0' * (SCALE - 1)}1)"


def round_div(numerator: str, denominator: str, *, times: int = 1) -> str:
    """SQL for ``numerator * times / denominator`` as a decimal rounded half up to
    ``SCALE`` places; NULL when the denominator is zero."""
    scaled = round_div_scaled(numerator, denominator, times=times)
    return f"(CASE WHEN ({denominator}) > 0 THEN {unscale(scaled)} END)"


def int_sum(expression: str) -> str:
    """``SUM`` that stays an integer on both dialects."""
    return f"CAST(SUM({expression}) AS BIGINT)"


def safe_sum(expression: str) -> str:
    """``SUM`` that cannot overflow, for bound checks: exact ``numeric`` on PostgreSQL,
    a float ``TOTAL`` on SQLite (exact up to 2**53, far above the bounds checked)."""
    return f"SUM({expression})" if vendor() == "postgresql" else f"TOTAL({expression})"


def tune_bulk_transaction() -> None:
    """On PostgreSQL, give the current transaction's big sorts and hashes room in memory
    and skip JIT compilation (it costs more than it saves on these one-off statements).
    ``SET LOCAL`` ends with the transaction; SQLite needs nothing."""
    if vendor() == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL work_mem = '256MB'")
            cursor.execute("SET LOCAL jit = off")


def execute(sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> int:
    """Run one statement on the default connection; return the affected row count."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def fetch_all(sql: str, params: Mapping[str, Any] | Sequence[Any] | None = None) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()
