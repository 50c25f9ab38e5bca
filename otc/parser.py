"""Streaming parser for FINRA's OTC weekly transparency download format."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import date
from functools import partial
from typing import NamedTuple

from spine.text import quote, shorten

__all__ = [
    "FIELD_LIMITS",
    "HEADER",
    "MAX_LINE_BYTES",
    "MAX_REJECT_RAW_CHARS",
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
#: Longest value of each text column, in characters. FINRA's own values are far
#: shorter (symbols up to 14 with suffixes, 4-letter MPIDs, issue names up to ~200).
FIELD_LIMITS: dict[str, int] = {
    "tierDescription": 40,
    "issueSymbolIdentifier": 20,
    "issueName": 255,
    "marketParticipantName": 255,
    "MPID": 8,
}
#: Longest line, in bytes without its line ending; a longer one is measured in pieces
#: and rejected, never held whole.
MAX_LINE_BYTES = 64 * 1024
#: Longest ``raw`` text kept for a rejected row.
MAX_REJECT_RAW_CHARS = 1000
#: Largest value a PostgreSQL bigint holds; larger volumes could not be stored.
MAX_BIGINT = 2**63 - 1
_MAX_BIGINT_DIGITS = len(str(MAX_BIGINT))
#: C0 and C1 control characters and DEL; the line ending is stripped before the check.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_BLANK = " \t"
#: How much of an unexpected header column, or of an out-of-range number, is quoted.
_COLUMN_QUOTE_CHARS = 40
_NUMBER_QUOTE_CHARS = 40
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
        raise ValueError(f"unknown tier {quote(value)}: expected one of T1, T2, OTC (or OTCE)")
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
        lines, chunked = _lines(self._source)
        line_no = _read_header(lines)
        accepted = {_DESCRIPTIONS[self.expected_tier]} if self.expected_tier else set(TIER_CODES)
        date_cache: dict[str, date] = {}
        get_date = date_cache.get
        new_row = tuple.__new__
        row_cls = ParsedRow
        max_symbol = FIELD_LIMITS[HEADER[1]]
        max_name = FIELD_LIMITS[HEADER[2]]
        max_venue = FIELD_LIMITS[HEADER[3]]
        max_mpid = FIELD_LIMITS[HEADER[4]]
        count = 0
        for line in lines:
            line_no += 1
            if len(line) > MAX_LINE_BYTES and len(line.rstrip(b"\r\n")) > MAX_LINE_BYTES:
                count += 1
                self.rows_read = count
                self.rejects += 1
                yield _long_line(line, line_no, lines if chunked else None)
                continue
            try:
                text = line.decode("utf-8").rstrip("\r\n")
            except UnicodeDecodeError as exc:
                raise _not_utf8(exc, line_no) from None
            if not text or (text[0] in _BLANK and not text.strip(_BLANK)):
                self.blank_lines += 1
                continue
            count += 1
            self.rows_read = count
            if not text.isprintable() and (control := _CONTROL.search(text)) is not None:
                self.rejects += 1
                yield _bare_reject(line_no, text, _control_reason(text, control.start()))
                continue
            fields = text.split(DELIMITER)
            if len(fields) != FIELD_COUNT:
                self.rejects += 1
                yield _bare_reject(
                    line_no, text, f"expected {FIELD_COUNT} fields, got {len(fields)}"
                )
                continue
            tier, symbol, issue_name, venue, mpid, qty_text, cnt_text, date_text = fields
            reason = None
            if tier not in accepted:
                tier, reason = _check_tier(tier, self.expected_tier)
            symbol = symbol.strip().upper()
            if not symbol:
                reason = _join(reason, "empty issueSymbolIdentifier")
            elif len(symbol) > max_symbol:
                reason = _join(reason, _too_long(HEADER[1], symbol))
                symbol = ""
            issue_name = issue_name.strip()
            if len(issue_name) > max_name:
                reason = _join(reason, _too_long(HEADER[2], issue_name))
                issue_name = ""
            venue = venue.strip()
            if len(venue) > max_venue:
                reason = _join(reason, _too_long(HEADER[3], venue))
                venue = ""
            mpid = mpid.strip().upper()
            if not mpid:
                reason = _join(reason, "empty MPID")
            elif len(mpid) > max_mpid:
                reason = _join(reason, _too_long(HEADER[4], mpid))
                mpid = ""
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
                    reason = _join(reason, f"unparseable lastUpdateDate: {quote(date_text)}")
                else:
                    self.last_update_dates.add(updated)
                    if len(date_cache) < _DATE_CACHE_LIMIT:
                        date_cache[date_text] = updated
            if reason is not None:
                self.rejects += 1
                if len(text) > MAX_REJECT_RAW_CHARS:
                    text = _reject_raw(text)
            yield new_row(
                row_cls,
                (line_no, text, tier, symbol, issue_name, venue, mpid, qty, cnt, updated, reason),
            )
        if count == 0:
            raise FileFormatError("file has a header but no data rows", line=1)


def _lines(source: Iterable[bytes]) -> tuple[Iterator[bytes], bool]:
    """The source's lines, and whether an over-long line arrives in pieces.

    A binary file (anything with ``readline``) is read at most ``MAX_LINE_BYTES`` plus
    a CRLF at a time, so a line of any length costs bounded memory; the remaining
    pieces of an over-long line follow it and are skipped by :func:`_long_line`.
    """
    readline = getattr(source, "readline", None)
    if callable(readline):
        return iter(partial(readline, MAX_LINE_BYTES + 2), b""), True
    return iter(source), False


def _long_line(first: bytes, line_no: int, pieces: Iterator[bytes] | None) -> ParsedRow:
    """Reject a line over ``MAX_LINE_BYTES``, measuring (not keeping) the rest of it.

    The reason names the fields that are too long when the line has the right number
    of fields, as a shorter line's reject would; otherwise it gives the field count.
    """
    sizes = _FieldSizes()
    sizes.add(first)
    if pieces is not None and not first.endswith(b"\n"):
        for piece in pieces:
            sizes.add(piece)
            if piece.endswith(b"\n"):
                break
    too_long = f"line is {sizes.bytes} bytes long; at most {MAX_LINE_BYTES}"
    if sizes.count != FIELD_COUNT:
        problems = [f"expected {FIELD_COUNT} fields, got {sizes.count}", too_long]
    else:
        problems = [
            f"{name} is {size} characters; at most {FIELD_LIMITS[name]}"
            for name, size in zip(HEADER, sizes.chars, strict=True)
            if name in FIELD_LIMITS and size > FIELD_LIMITS[name]
        ] or [too_long]
    start = first[:MAX_REJECT_RAW_CHARS].decode("utf-8", errors="replace")
    raw = (
        f"{_reject_raw(start)[:MAX_REJECT_RAW_CHARS]}… [truncated: the line is {sizes.bytes} bytes]"
    )
    reason = "; ".join(problems)
    return tuple.__new__(ParsedRow, (line_no, raw, "", "", "", "", "", None, None, None, reason))


class _FieldSizes:
    """Bytes, field count and per-field character counts of a line fed in pieces."""

    #: UTF-8 bytes that continue a character; the others each start one.
    _CONTINUATION = bytes(range(0x80, 0xC0))
    _DELIMITER = DELIMITER.encode()

    def __init__(self) -> None:
        self.bytes = 0
        self.count = 1
        self.chars = [0]
        self._held_cr = False

    def add(self, piece: bytes) -> None:
        if self._held_cr and not piece.startswith(b"\n"):
            self._count(b"\r")
        body = piece[:-1] if piece.endswith(b"\n") else piece
        # A CR that ends a piece is part of the CRLF if the next piece starts with LF.
        self._held_cr = body.endswith(b"\r") and body is piece
        self._count(body.removesuffix(b"\r"))

    def _count(self, body: bytes) -> None:
        self.bytes += len(body)
        parts = body.split(self._DELIMITER)
        self.chars[-1] += len(parts[0].translate(None, self._CONTINUATION))
        for part in parts[1:]:
            self.count += 1
            if len(self.chars) <= FIELD_COUNT:
                self.chars.append(len(part.translate(None, self._CONTINUATION)))


def _bare_reject(line_no: int, text: str, reason: str) -> ParsedRow:
    """A reject whose fields could not be read at all: only its (capped) text is kept."""
    raw = _reject_raw(text)
    return tuple.__new__(ParsedRow, (line_no, raw, "", "", "", "", "", None, None, None, reason))


def _reject_raw(text: str) -> str:
    """A rejected line's text as stored: control characters escaped, at most
    ``MAX_REJECT_RAW_CHARS`` characters and a note of how long it was."""
    if not text.isprintable():
        text = _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)
    if len(text) <= MAX_REJECT_RAW_CHARS:
        return text
    return (
        f"{text[:MAX_REJECT_RAW_CHARS]}… [truncated {len(text) - MAX_REJECT_RAW_CHARS} characters]"
    )


def _too_long(column: str, value: str) -> str:
    return f"{column} is {len(value)} characters; at most {FIELD_LIMITS[column]}"


def _control_reason(text: str, position: int) -> str:
    column = text.count(DELIMITER, 0, position)
    where = f"in {HEADER[column]} " if column < FIELD_COUNT else ""
    return f"control character {quote(text[position])} {where}at character {position + 1}"


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
    if len(first) > MAX_LINE_BYTES and len(first.rstrip(b"\r\n")) > MAX_LINE_BYTES:
        raise FileFormatError(
            f"header row is longer than {MAX_LINE_BYTES} bytes: not a FINRA OTC weekly download",
            line=1,
        )
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
    if len(missing) == FIELD_COUNT:
        raise FileFormatError(
            f"invalid header: none of FINRA's columns ({HEADER[0]}|{HEADER[1]}|…) found in "
            f"{quote(text, _COLUMN_QUOTE_CHARS)}",
            line=1,
        )
    unexpected = [name for name in columns if name not in HEADER]
    duplicated = sorted({name for name in columns if columns.count(name) > 1})
    problems = []
    if missing:
        problems.append("missing columns: " + ", ".join(missing))
    if unexpected:
        problems.append("unexpected columns: " + _some(unexpected))
    if duplicated:
        listed = ", ".join(shorten(name, _COLUMN_QUOTE_CHARS) for name in duplicated[:3])
        more = f" and {len(duplicated) - 3} more" if len(duplicated) > 3 else ""
        problems.append(f"duplicated columns: {listed}{more}")
    if not problems:
        problems.append("columns out of order: expected " + DELIMITER.join(HEADER))
    raise FileFormatError("invalid header: " + "; ".join(problems), line=1)


def _some(names: list[str], shown: int = 3) -> str:
    """The first few names, quoted briefly, and how many more there are."""
    listed = ", ".join(quote(name, _COLUMN_QUOTE_CHARS) for name in names[:shown])
    return listed + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _check_tier(value: str, expected: str | None) -> tuple[str, str | None]:
    """Slow path for a tier description that is not the expected one verbatim."""
    description = value.strip()
    if len(description) > FIELD_LIMITS[HEADER[0]]:
        return "", _too_long(HEADER[0], description)
    code = TIER_CODES.get(description)
    if code is None:
        return description, f"unknown tier description: {quote(description)}"
    if expected is not None and code != expected:
        return description, (
            f"tier does not match expected tier {expected} ({_DESCRIPTIONS[expected]}): "
            f"{quote(description)}"
        )
    return description, None


def _parse_count(text: str, column: str) -> tuple[int | None, str | None]:
    """Slow path for a share quantity or trade count that is not plain ASCII digits."""
    value = text.strip()
    if not value:
        return None, f"missing {column}"
    digits = value[1:] if value[0] == "-" else value
    if not (digits.isascii() and digits.isdigit()):
        return None, f"non-numeric {column}: {quote(text)}"
    if value[0] == "-":
        return None, f"negative {column}: {shorten(value, _NUMBER_QUOTE_CHARS)}"
    significant = value.lstrip("0")
    if len(significant) > _MAX_BIGINT_DIGITS or (significant and int(significant) > MAX_BIGINT):
        return None, f"{column} out of range: {shorten(value, _NUMBER_QUOTE_CHARS)}"
    return int(significant or "0"), None


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
