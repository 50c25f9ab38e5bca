"""Streaming parser for FINRA's OTC weekly transparency download format.

The file is pipe-delimited with one header row and one data row per symbol x venue.
FINRA never quotes fields, so a ``"`` or ``,`` inside a field is plain data and each
line is split on ``|`` only.

Problems are split in two classes on purpose:

* file-level problems (empty file, wrong header, wrong delimiter, undecodable bytes)
  make the whole file unusable and raise :class:`FileFormatError`;
* row-level problems (bad numbers, empty keys, wrong tier, wrong field count) yield a
  :class:`ParsedRow` with ``reject_reason`` set, so the caller can quarantine the row
  with its reason instead of losing it.

Rows are produced lazily with constant memory, so a file of any size (or a connector
feeding lines) can be loaded without holding it in memory. Duplicate symbol+MPID keys
are deliberately not tracked here: detecting them needs memory proportional to the
file, and the database does it set-based at load time.

Reject reasons start with a stable phrase; the offending value, when there is one,
follows after ``": "``. Several problems on one row are joined with ``"; "``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import NamedTuple

__all__ = [
    "HEADER",
    "TIER_CODES",
    "FileFormatError",
    "ParsedRow",
    "WeeklyFileParser",
    "parse_tier",
    "tier_description_for",
]

HEADER: tuple[str, ...] = (
    "tierDescription",
    "issueSymbolIdentifier",
    "issueName",
    "marketParticipantName",
    "MPID",
    "totalWeeklyShareQuantity",
    "totalWeeklyTradeCount",
    "lastUpdateDate",
)
FIELD_COUNT = len(HEADER)
DELIMITER = "|"

#: FINRA tier description -> Market Spine tier code.
TIER_CODES: dict[str, str] = {"NMS Tier 1": "T1", "NMS Tier 2": "T2", "OTC": "OTC"}
_DESCRIPTIONS: dict[str, str] = {code: desc for desc, code in TIER_CODES.items()}
#: Accepted spellings of a tier code; FINRA's API calls the OTC tier "OTCE".
_TIER_ALIASES: dict[str, str] = {"T1": "T1", "T2": "T2", "OTC": "OTC", "OTCE": "OTC"}

_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_OTHER_DELIMITERS = {",": "','", "\t": "tab", ";": "';'"}
#: Largest value a PostgreSQL bigint holds; larger volumes could not be stored.
_MAX_BIGINT = 2**63 - 1
#: Distinct lastUpdateDate strings remembered for fast lookup (a file has very few).
_DATE_CACHE_LIMIT = 256


class FileFormatError(ValueError):
    """The file as a whole cannot be read as a FINRA OTC weekly download.

    ``line`` is the 1-based line the problem was found on; the message starts with it
    so that it reaches the user even when only ``str(error)`` is shown.
    """

    def __init__(self, message: str, *, line: int) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.detail = message


class ParsedRow(NamedTuple):
    """One data line. Valid rows have ``reject_reason`` None and all values set."""

    line_no: int
    raw: str
    tier_description: str
    symbol: str
    issue_name: str
    venue_name: str
    mpid: str
    share_quantity: int | None
    trade_count: int | None
    last_update_date: date | None
    reject_reason: str | None


def parse_tier(value: str) -> str:
    """Return the tier code for ``value`` ("T1", "T2", "OTC" or the API's "OTCE")."""
    code = _TIER_ALIASES.get(value.strip().upper()) if isinstance(value, str) else None
    if code is None:
        raise ValueError(f"unknown tier {value!r}: expected one of T1, T2, OTC (or OTCE)")
    return code


def tier_description_for(code: str) -> str:
    """Return FINRA's tier description for a tier code, e.g. "T1" -> "NMS Tier 1"."""
    return _DESCRIPTIONS[parse_tier(code)]


class WeeklyFileParser:
    """Iterate over the data rows of one weekly file, validating as it goes.

    ``source`` is a binary file object or any iterable of ``bytes`` lines (with or
    without line endings). ``expected_tier`` is the tier the caller is capturing; rows
    of another tier are rejected. With ``None`` any known tier is accepted.

    The counters are kept up to date while iterating and are final once the iterator
    is exhausted: ``rows_read`` (data rows yielded, rejects included), ``rejects``,
    ``blank_lines`` (empty lines skipped) and ``last_update_dates`` (distinct valid
    dates; more than one means FINRA mixed updates in one file).
    """

    def __init__(self, source: Iterable[bytes], *, expected_tier: str | None = None) -> None:
        self._source = source
        self.expected_tier = parse_tier(expected_tier) if expected_tier is not None else None
        self.rows_read = 0
        self.rejects = 0
        self.blank_lines = 0
        self.last_update_dates: set[date] = set()
        self._started = False

    def __iter__(self) -> Iterator[ParsedRow]:
        if self._started:
            raise RuntimeError("a WeeklyFileParser can be iterated only once")
        self._started = True
        return self._rows()

    def _rows(self) -> Iterator[ParsedRow]:
        lines = iter(self._source)
        line_no = _read_header(lines)
        accepted = {_DESCRIPTIONS[self.expected_tier]} if self.expected_tier else set(TIER_CODES)
        date_cache: dict[str, date] = {}
        get_date = date_cache.get
        new_row = tuple.__new__
        row_cls = ParsedRow
        count = 0
        for line in lines:
            line_no += 1
            try:
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise _not_utf8(exc, line_no) from None
            if not text:
                self.blank_lines += 1
                continue
            count += 1
            self.rows_read = count
            fields = text.split(DELIMITER)
            if len(fields) != FIELD_COUNT:
                self.rejects += 1
                reason = f"expected {FIELD_COUNT} fields, got {len(fields)}"
                yield new_row(
                    row_cls, (line_no, text, "", "", "", "", "", None, None, None, reason)
                )
                continue
            tier, symbol, issue_name, venue, mpid, qty_text, cnt_text, date_text = fields
            reason = None
            if tier not in accepted:
                tier, reason = _check_tier(tier, self.expected_tier)
            symbol = symbol.strip().upper()
            if not symbol:
                reason = _join(reason, "empty issueSymbolIdentifier")
            mpid = mpid.strip().upper()
            if not mpid:
                reason = _join(reason, "empty MPID")
            if qty_text.isascii() and qty_text.isdigit() and len(qty_text) < 19:
                qty: int | None = int(qty_text)
            else:
                qty, problem = _parse_count(qty_text, HEADER[5])
                reason = _join(reason, problem)
            if cnt_text.isascii() and cnt_text.isdigit() and len(cnt_text) < 19:
                cnt: int | None = int(cnt_text)
            else:
                cnt, problem = _parse_count(cnt_text, HEADER[6])
                reason = _join(reason, problem)
            updated = get_date(date_text)
            if updated is None:
                updated = _parse_date(date_text)
                if updated is None:
                    reason = _join(reason, f"unparseable lastUpdateDate: {date_text!r}")
                else:
                    self.last_update_dates.add(updated)
                    if len(date_cache) < _DATE_CACHE_LIMIT:
                        date_cache[date_text] = updated
            if reason is not None:
                self.rejects += 1
            yield new_row(
                row_cls,
                (
                    line_no,
                    text,
                    tier,
                    symbol,
                    issue_name.strip(),
                    venue.strip(),
                    mpid,
                    qty,
                    cnt,
                    updated,
                    reason,
                ),
            )
        if count == 0:
            raise FileFormatError("file has a header but no data rows", line=1)


def _read_header(lines: Iterator[bytes]) -> int:
    """Validate the header row and return the number of lines consumed."""
    first = next(lines, None)
    if first is None:
        raise FileFormatError("empty file: expected a header row", line=1)
    if not isinstance(first, bytes | bytearray):
        raise TypeError(
            f"expected bytes lines, got {type(first).__name__}; open the file in binary mode"
        )
    if first.startswith(_UTF16_BOMS):
        raise FileFormatError("file is UTF-16 encoded: expected UTF-8", line=1)
    if first.startswith(_BOM):
        first = first[len(_BOM) :]
    try:
        text = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as exc:
        raise _not_utf8(exc, 1) from None
    consumed = 1
    if not text.strip():
        for line in lines:
            consumed += 1
            if line.strip():
                raise FileFormatError("header row is blank", line=1)
        raise FileFormatError("empty file: expected a header row", line=1)
    _check_header(text)
    return consumed


def _check_header(text: str) -> None:
    """Raise a FileFormatError that names exactly what is wrong with the header."""
    if "\r" in text:
        raise FileFormatError("unsupported line ending (bare CR): expected LF or CRLF", line=1)
    if DELIMITER not in text:
        for delimiter, name in _OTHER_DELIMITERS.items():
            if delimiter in text:
                raise FileFormatError(
                    f"expected '|' delimiter, found {name}-delimited header", line=1
                )
    columns = [column.strip() for column in text.split(DELIMITER)]
    if tuple(columns) == HEADER:
        return
    missing = [name for name in HEADER if name not in columns]
    unexpected = [name for name in columns if name not in HEADER]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected columns: " + ", ".join(repr(name) for name in unexpected))
    if duplicated:
        problems.append("duplicated columns: " + ", ".join(duplicated))
    if not problems:
        problems.append("columns out of order: expected " + DELIMITER.join(HEADER))
    raise FileFormatError("invalid header: " + "; ".join(problems), line=1)


def _check_tier(value: str, expected: str | None) -> tuple[str, str | None]:
    """Slow path for a tier description that is not the expected one verbatim."""
    description = value.strip()
    code = TIER_CODES.get(description)
    if code is None:
        return description, f"unknown tier description: {description!r}"
    if expected is not None and code != expected:
        return description, (
            f"tier does not match expected tier {expected} ({_DESCRIPTIONS[expected]}): "
            f"{description!r}"
        )
    return description, None


def _parse_count(text: str, column: str) -> tuple[int | None, str | None]:
    """Slow path for a share quantity or trade count that is not plain ASCII digits."""
    value = text.strip()
    if not value:
        return None, f"missing {column}"
    digits = value[1:] if value[0] == "-" else value
    if not (digits.isascii() and digits.isdigit()):
        return None, f"non-numeric {column}: {text!r}"
    if value[0] == "-":
        return None, f"negative {column}: {value}"
    number = int(value)
    if number > _MAX_BIGINT:
        return None, f"{column} out of range: {value}"
    return number, None


def _parse_date(text: str) -> date | None:
    """Parse a strict ``YYYY-MM-DD`` date, returning None when it is not one."""
    value = text.strip()
    if len(value) != 10 or value[4] != "-" or value[7] != "-":
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        return None


def _join(reason: str | None, problem: str | None) -> str | None:
    if problem is None:
        return reason
    return problem if reason is None else f"{reason}; {problem}"


def _not_utf8(exc: UnicodeDecodeError, line_no: int) -> FileFormatError:
    byte = exc.object[exc.start : exc.start + 1].hex()
    return FileFormatError(
        f"not valid UTF-8: byte 0x{byte} at byte offset {exc.start}", line=line_no
    )
