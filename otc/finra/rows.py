"""Turn API rows into lines of FINRA's pipe-delimited download file."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from otc.finra.errors import FinraProtocolError
from otc.parser import DELIMITER
from otc.parser import HEADER as DOWNLOAD_COLUMNS
from spine.text import quote

HEADER_LINE = (DELIMITER.join(DOWNLOAD_COLUMNS) + "\n").encode()

#: FINRA's ``tierIdentifier`` -> the tier description the download format uses today.
CURRENT_TIER_DESCRIPTIONS = {"T1": "NMS Tier 1", "T2": "NMS Tier 2", "OTCE": "OTC"}
#: Descriptions FINRA's older rows carry, mapped to today's (not rejected).
OLDER_TIER_DESCRIPTIONS = {
    "Tier 1": "NMS Tier 1",
    "NMS Tier1": "NMS Tier 1",
    "Tier 1 NMS": "NMS Tier 1",
    "Tier 2": "NMS Tier 2",
    "NMS Tier2": "NMS Tier 2",
    "Tier 2 NMS": "NMS Tier 2",
    "OTCE": "OTC",
    "OTC Equity": "OTC",
    "OTC Equities": "OTC",
}


def tier_description(row: Mapping[str, Any]) -> Any:
    """The row's tier description in today's wording: an older one is mapped, and one
    that is neither follows the row's ``tierIdentifier`` when it has one."""
    value = row.get("tierDescription")
    current = set(CURRENT_TIER_DESCRIPTIONS.values())
    if isinstance(value, str) and value.strip() in current:
        return value
    mapped = OLDER_TIER_DESCRIPTIONS.get(value.strip()) if isinstance(value, str) else None
    if mapped is None:
        mapped = CURRENT_TIER_DESCRIPTIONS.get(str(row.get("tierIdentifier", "")).upper())
    return mapped if mapped is not None else value


def _cell(row: Mapping[str, Any], column: str, row_number: int) -> str:
    value = tier_description(row) if column == "tierDescription" else row.get(column)
    if value is None:
        raise FinraProtocolError(f"API row {row_number}: required field {column!r} is missing")
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FinraProtocolError(
            f"API row {row_number}: field {column!r} is {quote(value)}, "
            "expected text or a whole number"
        )
    text = str(value)
    if DELIMITER in text or "\n" in text or "\r" in text:
        raise FinraProtocolError(
            f"API row {row_number}: field {column!r} contains a delimiter or line break: "
            f"{quote(text)}"
        )
    return text


def api_rows_to_lines(pages: Iterable[Iterable[Mapping[str, Any]]]) -> Iterator[bytes]:
    """Yield the header line, then one UTF-8, newline-terminated line per row.

    Consumes ``pages`` lazily (e.g. straight from ``FinraClient.iter_weekly_summary``
    with per-venue fields). Rows are numbered from 1 across all pages in errors.

    Raises:
        FinraProtocolError: a row lacks a column of the download format, or a value
            cannot be written to it faithfully (delimiter, line break, not text/integer).
    """
    yield HEADER_LINE
    row_number = 0
    for page in pages:
        for row in page:
            row_number += 1
            cells = [_cell(row, column, row_number) for column in DOWNLOAD_COLUMNS]
            yield (DELIMITER.join(cells) + "\n").encode()
