"""Portable SQL building blocks shared by the OTC services.

Every computation on the data path is written once, as SQL that PostgreSQL and SQLite
run alike (``INSERT ... SELECT``, window functions, ``GROUP BY``). The one place the
dialects disagree in a way that matters is numbers, and it is settled here:

* ``SUM`` of a bigint is ``numeric`` on PostgreSQL but an integer on SQLite, so sums
  are cast back with ``CAST(SUM(x) AS BIGINT)`` before integer arithmetic;
* divisions that yield a percentage or an average are done in integers, rounded half
  up at a fixed scale (:func:`round_div_scaled`), and only the final scale-down turns
  the integer into a decimal (a multiplication by 0.0001, exact in PostgreSQL's
  ``numeric`` and cheaper than a division). SQLite has no exact decimal type, so doing the rounding
  in integers is what makes both databases return the same four-decimal values
  (Django reads a SQLite float back as a Decimal quantized to the column's places,
  which recovers the exact scaled integer).

Integer intermediates must stay below 2**63: PostgreSQL raises on bigint overflow and
SQLite turns the value into an inexact float (or raises, in ``SUM``). The largest is
a percentage of a capture's total volume, about ``2 * total * 10**6``, so every
capture is checked before normalization (:func:`safe_sum`, which cannot overflow):
at most :data:`MAX_CAPTURE_VOLUME` shares, and as many trades, per capture (the real
OTC ATS sample totals 1.3 billion shares). That keeps every sum, product and rolling
six-week total of the analytics inside a bigint.
"""

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
