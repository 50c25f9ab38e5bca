"""The FINRA download parser: real data, every file-level error, every row reject."""

from __future__ import annotations

import io
import itertools
import tracemalloc
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from otc.parser import (
    FIELD_LIMITS,
    HEADER,
    MAX_LINE_BYTES,
    MAX_REJECT_RAW_CHARS,
    TIER_CODES,
    FileFormatError,
    ParsedRow,
    WeeklyFileParser,
    parse_tier,
    tier_description_for,
)

HEADER_LINE = "|".join(HEADER)
GOOD_ROW = (
    "OTC|AABB|Asia Broadband Inc Common Stock|OTCN OTC LINK NQB IDQS|OTCN|6753871|171|2025-12-15"
)


def parse(text: str | bytes, expected_tier: str | None = "OTC") -> list[ParsedRow]:
    data = text.encode() if isinstance(text, str) else text
    return list(WeeklyFileParser(io.BytesIO(data), expected_tier=expected_tier))


def parse_rows(*lines: str, expected_tier: str | None = "OTC") -> list[ParsedRow]:
    return parse("\n".join([HEADER_LINE, *lines]) + "\n", expected_tier)


def file_error(data: str | bytes) -> FileFormatError:
    with pytest.raises(FileFormatError) as caught:
        parse(data)
    return caught.value


# --- the real FINRA file ------------------------------------------------------------


def test_real_file_parses_without_rejects(real_otc_file: Path) -> None:
    with real_otc_file.open("rb") as stream:
        parser = WeeklyFileParser(stream, expected_tier="OTC")
        rows = list(parser)

    assert len(rows) == 5328
    assert parser.rows_read == 5328
    assert parser.rejects == 0
    assert [row for row in rows if row.reject_reason] == []
    assert len({row.symbol for row in rows}) == 3111
    assert len({row.mpid for row in rows}) == 9
    assert sum(row.share_quantity or 0 for row in rows) == 1_335_995_901
    assert {row.last_update_date for row in rows} == {date(2025, 12, 15)}
    assert parser.last_update_dates == {date(2025, 12, 15)}
    assert rows[0].line_no == 2
    assert rows[-1].line_no == 5329


def test_real_file_values_and_raw_line(real_otc_file: Path) -> None:
    with real_otc_file.open("rb") as stream:
        first = next(iter(WeeklyFileParser(stream, expected_tier="OTCE")))

    assert first == ParsedRow(
        line_no=2,
        raw=GOOD_ROW,
        tier_description="OTC",
        symbol="AABB",
        issue_name="Asia Broadband Inc Common Stock",
        venue_name="OTCN OTC LINK NQB IDQS",
        mpid="OTCN",
        share_quantity=6753871,
        trade_count=171,
        last_update_date=date(2025, 12, 15),
        reject_reason=None,
    )


def test_real_file_captured_as_the_wrong_tier_rejects_every_row(real_otc_file: Path) -> None:
    with real_otc_file.open("rb") as stream:
        parser = WeeklyFileParser(stream, expected_tier="T1")
        reasons = {row.reject_reason for row in parser}

    assert reasons == {"tier does not match expected tier T1 (NMS Tier 1): 'OTC'"}
    assert parser.rejects == 5328


# --- tiers --------------------------------------------------------------------------


def test_tier_codes_and_descriptions() -> None:
    assert TIER_CODES == {"NMS Tier 1": "T1", "NMS Tier 2": "T2", "OTC": "OTC"}
    assert tier_description_for("T1") == "NMS Tier 1"
    assert tier_description_for("t2") == "NMS Tier 2"
    assert tier_description_for("OTCE") == "OTC"


@pytest.mark.parametrize(
    ("value", "code"),
    [("T1", "T1"), ("t1", "T1"), ("T2", "T2"), ("OTC", "OTC"), (" otc ", "OTC"), ("OTCE", "OTC")],
)
def test_parse_tier_accepts_codes_and_the_api_name(value: str, code: str) -> None:
    assert parse_tier(value) == code


@pytest.mark.parametrize("value", ["T3", "", "NMS Tier 1", "OTCX"])
def test_parse_tier_names_the_allowed_values(value: str) -> None:
    with pytest.raises(ValueError, match=r"expected one of T1, T2, OTC \(or OTCE\)"):
        parse_tier(value)


def test_unknown_expected_tier_is_refused_up_front() -> None:
    with pytest.raises(ValueError, match="unknown tier 'T9'"):
        WeeklyFileParser([], expected_tier="T9")


# --- file-level errors --------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", b"\xef\xbb\xbf", b"\n", b"\r\n\r\n  \n"])
def test_empty_file(data: bytes) -> None:
    error = file_error(data)
    assert str(error) == "line 1: empty file: expected a header row"
    assert error.line == 1
    assert isinstance(error, ValueError)


def test_blank_header_before_data() -> None:
    assert str(file_error("\n" + GOOD_ROW + "\n")) == "line 1: header row is blank"


@pytest.mark.parametrize("data", [HEADER_LINE, HEADER_LINE + "\n", HEADER_LINE + "\r\n\r\n\n"])
def test_header_only(data: str) -> None:
    error = file_error(data)
    assert str(error) == "line 1: file has a header but no data rows"
    assert error.line == 1


def test_missing_column_is_named() -> None:
    header = "|".join(name for name in HEADER if name != "MPID")
    assert str(file_error(header + "\n" + GOOD_ROW)) == (
        "line 1: invalid header: missing columns: MPID"
    )


def test_extra_column_is_named() -> None:
    error = file_error(HEADER_LINE + "|weekStartDate\n" + GOOD_ROW)
    assert str(error) == "line 1: invalid header: unexpected columns: 'weekStartDate'"


def test_renamed_column_is_both_missing_and_unexpected() -> None:
    header = HEADER_LINE.replace("issueSymbolIdentifier", "symbol")
    assert str(file_error(header + "\n")) == (
        "line 1: invalid header: missing columns: issueSymbolIdentifier; "
        "unexpected columns: 'symbol'"
    )


def test_duplicated_column_is_named() -> None:
    header = HEADER_LINE.replace("issueName", "MPID")
    assert str(file_error(header + "\n")) == (
        "line 1: invalid header: missing columns: issueName; duplicated columns: MPID"
    )


def test_columns_out_of_order() -> None:
    columns = list(HEADER)
    columns[0], columns[1] = columns[1], columns[0]
    assert str(file_error("|".join(columns) + "\n")) == (
        f"line 1: invalid header: columns out of order: expected {HEADER_LINE}"
    )


@pytest.mark.parametrize(("delimiter", "name"), [(",", "','"), ("\t", "tab"), (";", "';'")])
def test_wrong_delimiter(delimiter: str, name: str) -> None:
    text = delimiter.join(HEADER) + "\n" + GOOD_ROW.replace("|", delimiter) + "\n"
    error = file_error(text)
    assert str(error) == f"line 1: expected '|' delimiter, found {name}-delimited header"
    assert error.line == 1


def test_non_utf8_header() -> None:
    error = file_error(b"tierDescription\xff|x\n")
    assert str(error) == "line 1: not valid UTF-8: byte 0xff at byte offset 15"
    assert error.line == 1


def test_non_utf8_data_row_names_its_line() -> None:
    data = f"{HEADER_LINE}\n{GOOD_ROW}\n".encode() + b"OTC|ABCD|Caf\xe9 Inc|X|OTCN|1|1|2025-12-15\n"
    parser = WeeklyFileParser(io.BytesIO(data), expected_tier="OTC")
    rows = iter(parser)
    assert next(rows).symbol == "AABB"
    with pytest.raises(FileFormatError) as caught:
        next(rows)
    assert str(caught.value) == "line 3: not valid UTF-8: byte 0xe9 at byte offset 12"
    assert caught.value.line == 3
    assert caught.value.detail == "not valid UTF-8: byte 0xe9 at byte offset 12"


def test_utf16_file() -> None:
    data = "\ufeff".encode("utf-16-le") + HEADER_LINE.encode("utf-16-le")
    assert str(file_error(b"\xff\xfe" + data[2:])) == (
        "line 1: file is UTF-16 encoded: expected UTF-8"
    )


def test_bare_carriage_returns() -> None:
    error = file_error(HEADER_LINE + "\r" + GOOD_ROW + "\r")
    assert str(error) == "line 1: unsupported line ending (bare CR): expected LF or CRLF"


def test_text_stream_is_refused_with_a_hint() -> None:
    parser = WeeklyFileParser(io.StringIO(HEADER_LINE + "\n" + GOOD_ROW))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="open the file in binary mode"):
        list(parser)


def test_parser_is_single_use() -> None:
    parser = WeeklyFileParser(io.BytesIO(f"{HEADER_LINE}\n{GOOD_ROW}\n".encode()))
    list(parser)
    with pytest.raises(RuntimeError, match="only once"):
        iter(parser)


# --- accepted variations ------------------------------------------------------------


def test_bom_and_crlf_are_accepted() -> None:
    data = b"\xef\xbb\xbf" + f"{HEADER_LINE}\r\n{GOOD_ROW}\r\n{GOOD_ROW}".encode()
    rows = parse(data)
    assert [row.raw for row in rows] == [GOOD_ROW, GOOD_ROW]
    assert [row.last_update_date for row in rows] == [date(2025, 12, 15)] * 2
    assert all(row.reject_reason is None for row in rows)


def test_lines_without_endings_from_an_iterable() -> None:
    parser = WeeklyFileParser([HEADER_LINE.encode(), GOOD_ROW.encode()], expected_tier="OTC")
    assert [row.symbol for row in parser] == ["AABB"]


def test_special_characters_in_fields_are_data() -> None:
    name = 'Acme, Inc. 7.25% Series "B" Pfd ($25.00 liq) & Co\'s'
    venue = 'KSTR KESTREL "K" CROSSING, LLC'
    (row,) = parse_rows(f"OTC|ACMEP|{name}|{venue}|KSTR|100|2|2025-12-15")
    assert row.reject_reason is None
    assert row.issue_name == name
    assert row.venue_name == venue
    assert row.raw == f"OTC|ACMEP|{name}|{venue}|KSTR|100|2|2025-12-15"


def test_keys_are_trimmed_and_uppercased_and_names_trimmed() -> None:
    (row,) = parse_rows("OTC| aabb |  Asia Broadband  | OTCN OTC LINK |otcn | 12 | 3 |2025-12-15")
    assert (row.symbol, row.mpid) == ("AABB", "OTCN")
    assert (row.issue_name, row.venue_name) == ("Asia Broadband", "OTCN OTC LINK")
    assert (row.share_quantity, row.trade_count) == (12, 3)
    assert row.reject_reason is None


def test_zero_volume_and_leading_zeros_are_valid() -> None:
    (row,) = parse_rows("OTC|AABB|A|B|OTCN|0|007|2025-12-15")
    assert (row.share_quantity, row.trade_count, row.reject_reason) == (0, 7, None)


def test_blank_lines_are_skipped_and_counted_but_keep_line_numbers() -> None:
    parser = WeeklyFileParser(io.BytesIO(f"{HEADER_LINE}\n\n{GOOD_ROW}\n\n".encode()))
    rows = list(parser)
    assert [row.line_no for row in rows] == [3]
    assert (parser.rows_read, parser.blank_lines, parser.rejects) == (1, 2, 0)


def test_any_known_tier_without_expected_tier() -> None:
    rows = parse_rows(
        "NMS Tier 1|AAPL|A|B|UBSA|1|1|2025-12-15",
        "NMS Tier 2|AAOI|A|B|UBSA|1|1|2025-12-15",
        "OTC|AABB|A|B|OTCN|1|1|2025-12-15",
        expected_tier=None,
    )
    assert [row.tier_description for row in rows] == ["NMS Tier 1", "NMS Tier 2", "OTC"]
    assert all(row.reject_reason is None for row in rows)


def test_mixed_last_update_dates_are_reported() -> None:
    parser = WeeklyFileParser(
        [
            HEADER_LINE.encode(),
            b"OTC|AABB|A|B|OTCN|1|1|2025-12-15",
            b"OTC|AACB|A|B|OTCN|1|1|2025-12-16",
            b"OTC|AADB|A|B|OTCN|1|1|2025-12-15",
            b"OTC|AAEB|A|B|OTCN|1|1|not a date",
        ],
        expected_tier="OTC",
    )
    list(parser)
    assert parser.last_update_dates == {date(2025, 12, 15), date(2025, 12, 16)}
    assert (parser.rows_read, parser.rejects) == (4, 1)


# --- row-level rejects --------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("OTC|AABB|A|B|OTCN|12a|1|2025-12-15", "non-numeric totalWeeklyShareQuantity: '12a'"),
        ("OTC|AABB|A|B|OTCN|1,234|1|2025-12-15", "non-numeric totalWeeklyShareQuantity: '1,234'"),
        ("OTC|AABB|A|B|OTCN|1.5|1|2025-12-15", "non-numeric totalWeeklyShareQuantity: '1.5'"),
        ("OTC|AABB|A|B|OTCN|+5|1|2025-12-15", "non-numeric totalWeeklyShareQuantity: '+5'"),
        ("OTC|AABB|A|B|OTCN|1_000|1|2025-12-15", "non-numeric totalWeeklyShareQuantity: '1_000'"),
        ("OTC|AABB|A|B|OTCN|١٢٣|1|2025-12-15", "non-numeric totalWeeklyShareQuantity: '١٢٣'"),
        ("OTC|AABB|A|B|OTCN|-5|1|2025-12-15", "negative totalWeeklyShareQuantity: -5"),
        ("OTC|AABB|A|B|OTCN||1|2025-12-15", "missing totalWeeklyShareQuantity"),
        ("OTC|AABB|A|B|OTCN|5|N/A|2025-12-15", "non-numeric totalWeeklyTradeCount: 'N/A'"),
        ("OTC|AABB|A|B|OTCN|5|-3|2025-12-15", "negative totalWeeklyTradeCount: -3"),
        ("OTC|AABB|A|B|OTCN|5| |2025-12-15", "missing totalWeeklyTradeCount"),
        (
            "OTC|AABB|A|B|OTCN|9223372036854775808|1|2025-12-15",
            "totalWeeklyShareQuantity out of range: 9223372036854775808",
        ),
        ("OTC||A|B|OTCN|5|1|2025-12-15", "empty issueSymbolIdentifier"),
        ("OTC|   |A|B|OTCN|5|1|2025-12-15", "empty issueSymbolIdentifier"),
        ("OTC|AABB|A|B||5|1|2025-12-15", "empty MPID"),
        (
            "NMS Tier 2|AABB|A|B|OTCN|5|1|2025-12-15",
            "tier does not match expected tier OTC (OTC): 'NMS Tier 2'",
        ),
        ("Tier 3|AABB|A|B|OTCN|5|1|2025-12-15", "unknown tier description: 'Tier 3'"),
        ("otc|AABB|A|B|OTCN|5|1|2025-12-15", "unknown tier description: 'otc'"),
        ("OTC|AABB|A|B|OTCN|5|1|2025-13-01", "unparseable lastUpdateDate: '2025-13-01'"),
        ("OTC|AABB|A|B|OTCN|5|1|12/15/2025", "unparseable lastUpdateDate: '12/15/2025'"),
        ("OTC|AABB|A|B|OTCN|5|1|20251215", "unparseable lastUpdateDate: '20251215'"),
        ("OTC|AABB|A|B|OTCN|5|1|", "unparseable lastUpdateDate: ''"),
        ("OTC|AABB|A|B|OTCN|5|1", "expected 8 fields, got 7"),
        ("OTC|AABB|A | B Inc|B|OTCN|5|1|2025-12-15", "expected 8 fields, got 9"),
        ("OTC,AABB,A,B,OTCN,5,1,2025-12-15", "expected 8 fields, got 1"),
    ],
)
def test_row_reject_reasons(line: str, reason: str) -> None:
    parser = WeeklyFileParser(io.BytesIO(f"{HEADER_LINE}\n{line}\n".encode()), expected_tier="OTC")
    (row,) = list(parser)
    assert row.reject_reason == reason
    assert row.raw == line
    assert row.line_no == 2
    assert (parser.rows_read, parser.rejects) == (1, 1)


def test_reject_fields_hold_what_could_be_read() -> None:
    (row,) = parse_rows("OTC| aabb |Name|Venue|OTCN|-5|7|2025-12-15")
    assert (row.symbol, row.share_quantity, row.trade_count) == ("AABB", None, 7)
    assert row.last_update_date == date(2025, 12, 15)

    (short,) = parse_rows("OTC|AABB|A")
    assert short.symbol == short.mpid == ""
    assert short.share_quantity is short.trade_count is short.last_update_date is None


def test_every_problem_of_a_row_is_reported() -> None:
    (row,) = parse_rows("NMS Tier 1||A|B||x|-1|nope")
    assert row.reject_reason == (
        "tier does not match expected tier OTC (OTC): 'NMS Tier 1'; "
        "empty issueSymbolIdentifier; empty MPID; "
        "non-numeric totalWeeklyShareQuantity: 'x'; negative totalWeeklyTradeCount: -1; "
        "unparseable lastUpdateDate: 'nope'"
    )


def test_rejects_do_not_stop_the_file() -> None:
    rows = parse_rows(GOOD_ROW, "OTC|AABB|A|B|OTCN|x|1|2025-12-15", GOOD_ROW)
    assert [row.reject_reason is None for row in rows] == [True, False, True]
    assert [row.line_no for row in rows] == [2, 3, 4]


def test_duplicate_keys_are_left_to_the_database() -> None:
    rows = parse_rows(GOOD_ROW, GOOD_ROW)
    assert [row.reject_reason for row in rows] == [None, None]


# --- bounds: field lengths, stored values, control characters, line length -------------

MB = 1 << 20


def row_with(**fields: str) -> str:
    values = dict(zip(HEADER, GOOD_ROW.split("|"), strict=True))
    values.update(fields)
    return "|".join(values[name] for name in HEADER)


def test_field_limits_fit_the_real_file(real_otc_file: Path) -> None:
    longest = dict.fromkeys(FIELD_LIMITS, 0)
    for line in real_otc_file.read_text().splitlines()[1:]:
        for name, value in zip(HEADER, line.split("|"), strict=True):
            if name in longest:
                longest[name] = max(longest[name], len(value))
    assert all(longest[name] <= FIELD_LIMITS[name] for name in FIELD_LIMITS), longest
    assert FIELD_LIMITS == {
        "tierDescription": 40,
        "issueSymbolIdentifier": 20,
        "issueName": 255,
        "marketParticipantName": 255,
        "MPID": 8,
    }


@pytest.mark.parametrize(
    "column", ["issueSymbolIdentifier", "issueName", "marketParticipantName", "MPID"]
)
def test_a_field_at_its_limit_is_valid_and_one_more_is_a_reject(column: str) -> None:
    limit = FIELD_LIMITS[column]
    at_limit, over = row_with(**{column: "A" * limit}), row_with(**{column: "A" * (limit + 1)})
    ok, rejected = parse_rows(at_limit, over)
    assert ok.reject_reason is None
    assert rejected.reject_reason == f"{column} is {limit + 1} characters; at most {limit}"
    assert rejected.line_no == 3


@pytest.mark.parametrize("size", [41, 1000, MB])
def test_an_over_long_tier_description_is_a_reject_naming_it(size: int) -> None:
    (row,) = parse_rows(row_with(tierDescription="T" * size))
    assert row.reject_reason == f"tierDescription is {size} characters; at most 40"
    assert row.tier_description == ""


def test_a_1_mb_symbol_is_a_reject_naming_the_field_and_the_rest_parses() -> None:
    huge = row_with(issueSymbolIdentifier="X" * MB)
    parser = WeeklyFileParser(
        io.BytesIO(f"{HEADER_LINE}\n{GOOD_ROW}\n{huge}\n{GOOD_ROW}\n".encode())
    )
    rows = list(parser)
    assert [row.reject_reason for row in rows] == [
        None,
        "issueSymbolIdentifier is 1048576 characters; at most 20",
        None,
    ]
    rejected = rows[1]
    assert rejected.symbol == ""
    assert len(rejected.raw) < MAX_REJECT_RAW_CHARS + 50
    assert rejected.raw.startswith("OTC|XXXX") and rejected.raw.endswith(" bytes]")
    assert (parser.rows_read, parser.rejects) == (3, 1)


def test_a_10_mb_issue_name_is_a_reject() -> None:
    (row,) = parse_rows(row_with(issueName="N" * (10 * MB)))
    assert row.reject_reason == "issueName is 10485760 characters; at most 255"
    assert row.issue_name == ""
    assert len(row.raw) < MAX_REJECT_RAW_CHARS + 50


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        (
            "totalWeeklyShareQuantity",
            "9223372036854775807",
            None,
        ),
        (
            "totalWeeklyShareQuantity",
            "9223372036854775808",
            "totalWeeklyShareQuantity out of range: 9223372036854775808",
        ),
        (
            "totalWeeklyTradeCount",
            "99999999999999999999",
            "totalWeeklyTradeCount out of range: 99999999999999999999",
        ),
        ("totalWeeklyTradeCount", "0" * 5000 + "42", None),
        (
            "totalWeeklyShareQuantity",
            "9" * 5000,
            f"totalWeeklyShareQuantity out of range: {'9' * 40}… (5,000 characters)",
        ),
        (
            "totalWeeklyShareQuantity",
            "-" + "9" * 5000,
            f"negative totalWeeklyShareQuantity: -{'9' * 39}… (5,001 characters)",
        ),
    ],
)
def test_a_volume_no_bigint_holds_is_a_reject(column: str, value: str, reason: str | None) -> None:
    (row,) = parse_rows(row_with(**{column: value}))
    assert row.reject_reason == reason
    if reason is None:
        kept = row.share_quantity if "Share" in column else row.trade_count
        assert kept == int(value.lstrip("0"))


def test_reasons_quote_at_most_200_characters_of_input() -> None:
    (row,) = parse_rows(
        row_with(
            tierDescription="NMS Tier 1" + " " * 30,
            totalWeeklyShareQuantity="x" * 20_000,
            totalWeeklyTradeCount="y" * 20_000,
            lastUpdateDate="z" * 20_000,
        )
    )
    problems = row.reject_reason.split("; ")
    assert [problem.split(":")[0] for problem in problems] == [
        "tier does not match expected tier OTC (OTC)",
        "non-numeric totalWeeklyShareQuantity",
        "non-numeric totalWeeklyTradeCount",
        "unparseable lastUpdateDate",
    ]
    assert (
        problems[1] == f"non-numeric totalWeeklyShareQuantity: '{'x' * 200}'… (20,000 characters)"
    )
    assert all(len(problem) < 300 for problem in problems)


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (
            row_with(issueName="Asia\x00Broadband"),
            "control character '\\x00' in issueName at character 14",
        ),
        ("\x00" + GOOD_ROW, "control character '\\x00' in tierDescription at character 1"),
        (row_with(MPID="OT\tCN"), "control character '\\t' in MPID at character 67"),
        (
            GOOD_ROW.replace("171", "1\r71"),
            "control character '\\r' in totalWeeklyTradeCount at character 79",
        ),
        (row_with(issueName="A\x7fB"), "control character '\\x7f' in issueName at character 11"),
        (row_with(issueName="A\x85B"), "control character '\\x85' in issueName at character 11"),
        (GOOD_ROW + "|\x1b", "control character '\\x1b' at character 93"),
    ],
)
def test_a_control_character_makes_the_row_a_reject(line: str, reason: str) -> None:
    (row,) = parse_rows(line)
    assert row.reject_reason == reason
    assert row.line_no == 2
    assert row.raw.isprintable()
    assert (row.symbol, row.share_quantity) == ("", None)


def test_a_nul_byte_in_line_12_is_a_reject_on_line_12_and_the_rest_parses() -> None:
    lines = [GOOD_ROW] * 10 + [row_with(issueName="Bad\x00Name")] + [GOOD_ROW] * 3
    rows = parse_rows(*lines)
    rejected = [row for row in rows if row.reject_reason]
    assert [(row.line_no, row.raw) for row in rejected] == [
        (12, row_with(issueName="Bad\\x00Name"))
    ]
    assert len(rows) == 14


def test_unicode_that_is_not_a_control_character_is_data() -> None:
    name = "Soci\u00e9t\u00e9\u00a0G\u00e9n\u00e9rale \u2013 \u6771\u4eac"
    (row,) = parse_rows(row_with(issueName=name))
    assert (row.reject_reason, row.issue_name) == (None, name)


@pytest.mark.parametrize("blank", [" ", "   ", "\t", " \t ", "  \r"])
def test_whitespace_only_lines_are_skipped_anywhere_not_rejected(blank: str) -> None:
    data = f"{HEADER_LINE}\n{blank}\n{GOOD_ROW}\n{blank}\n{GOOD_ROW}\n{blank}\n"
    parser = WeeklyFileParser(io.BytesIO(data.encode()))
    rows = list(parser)
    assert [row.line_no for row in rows] == [3, 5]
    assert (parser.rows_read, parser.blank_lines, parser.rejects) == (2, 3, 0)


def test_a_trailing_whitespace_line_leaves_the_real_file_without_rejects(
    real_otc_file: Path,
) -> None:
    parser = WeeklyFileParser(
        io.BytesIO(real_otc_file.read_bytes() + b"   \n"), expected_tier="OTC"
    )
    rows = list(parser)
    assert (len(rows), parser.rows_read, parser.rejects, parser.blank_lines) == (5328, 5328, 0, 1)


def test_a_line_over_the_limit_is_a_reject_read_in_bounded_memory() -> None:
    long_line = row_with(issueName="L" * (10 * MB))
    data = f"{HEADER_LINE}\n{GOOD_ROW}\n{long_line}\r\n{GOOD_ROW}\n".encode()
    source = io.BytesIO(data)
    parser = WeeklyFileParser(source)
    tracemalloc.start()
    try:
        rows = list(parser)
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 * MB
    assert [row.reject_reason for row in rows] == [
        None,
        f"issueName is {10 * MB} characters; at most 255",
        None,
    ]
    assert [row.line_no for row in rows] == [2, 3, 4]
    assert rows[1].raw.startswith("OTC|AABB|LLLL")
    assert rows[1].raw.endswith(f"… [truncated: the line is {len(long_line)} bytes]")
    assert len(rows[1].raw) < MAX_REJECT_RAW_CHARS + 50


def test_a_line_at_the_limit_is_read_whole() -> None:
    filler = MAX_LINE_BYTES - len(row_with(issueName=""))
    line = row_with(issueName="N" * filler)
    assert len(line) == MAX_LINE_BYTES
    for ending in ("\n", "\r\n", ""):
        (row,) = parse(f"{HEADER_LINE}\n{line}{ending}")
        assert row.reject_reason == f"issueName is {filler} characters; at most 255"


def test_an_over_long_line_from_an_iterable_is_a_reject_too() -> None:
    long_line = row_with(issueName="L" * (MAX_LINE_BYTES + 1)).encode()
    rows = list(WeeklyFileParser([HEADER_LINE.encode(), long_line, GOOD_ROW.encode()]))
    assert rows[0].reject_reason == f"issueName is {MAX_LINE_BYTES + 1} characters; at most 255"
    assert rows[1].reject_reason is None


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("x" * 100_000, "expected 8 fields, got 1; line is 100000 bytes long; at most 65536"),
        (
            "|".join(["y" * 20_000] * 9),
            "expected 8 fields, got 9; line is 180008 bytes long; at most 65536",
        ),
        (
            row_with(totalWeeklyShareQuantity="1" * 70_000),
            f"line is {len(row_with()) - 7 + 70_000} bytes long; at most 65536",
        ),
        (
            row_with(issueName="é" * 40_000, MPID="M" * 30_000),
            "issueName is 40000 characters; at most 255; MPID is 30000 characters; at most 8",
        ),
    ],
)
def test_an_over_long_line_is_measured_in_pieces(line: str, reason: str) -> None:
    for ending in ("\n", "\r\n", ""):
        (row,) = parse(f"{HEADER_LINE}\n{line}{ending}")
        assert row.reject_reason == reason


@pytest.mark.parametrize(
    "data",
    [
        b"x" * (10 * MB),
        b"tierDescription" * (700 * 1024) + b"\n" + GOOD_ROW.encode(),
        ("|".join(["col" * 20] * 50) + "\n" + GOOD_ROW).encode(),
        ("x" * 60_000 + "\n" + GOOD_ROW).encode(),
        ("\x00" * 60_000 + "\n" + GOOD_ROW).encode(),
    ],
)
def test_a_bad_header_of_any_size_gives_a_short_error(data: bytes) -> None:
    error = file_error(data)
    assert error.line == 1
    assert len(str(error)) < 300, str(error)
    assert str(error).isprintable()


def test_a_10_mb_single_line_file_is_refused_as_not_a_finra_file() -> None:
    assert str(file_error(b"x" * (10 * MB))) == (
        f"line 1: header row is longer than {MAX_LINE_BYTES} bytes: not a FINRA OTC weekly download"
    )


def test_many_unexpected_header_columns_are_counted_not_all_listed() -> None:
    header = HEADER_LINE + "|" + "|".join(f"extra{i}" for i in range(10))
    assert str(file_error(header + "\n" + GOOD_ROW)) == (
        "line 1: invalid header: unexpected columns: 'extra0', 'extra1', 'extra2' and 7 more"
    )


# --- streaming ----------------------------------------------------------------------


def test_rows_are_yielded_lazily_from_an_endless_source() -> None:
    pulled = 0

    def endless() -> Iterator[bytes]:
        nonlocal pulled
        for line in itertools.chain([HEADER_LINE.encode()], itertools.repeat(GOOD_ROW.encode())):
            pulled += 1
            yield line

    rows = iter(WeeklyFileParser(endless(), expected_tier="OTC"))
    assert next(rows).symbol == "AABB"
    assert pulled == 2
    assert [row.line_no for row in itertools.islice(rows, 3)] == [3, 4, 5]
    assert pulled == 5


def test_memory_stays_flat_over_many_rows() -> None:
    lines = itertools.chain(
        [HEADER_LINE.encode()], itertools.repeat(GOOD_ROW.encode() + b"\n", 20_000)
    )
    parser = WeeklyFileParser(lines, expected_tier="OTC")
    tracemalloc.start()
    try:
        for _row in parser:
            pass
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert parser.rows_read == 20_000
    assert peak < 256 * 1024


# --- properties ---------------------------------------------------------------------

# Control characters (category Cc) make a row a reject; they are tested on their own.
_TEXT = st.text(
    alphabet=st.characters(blacklist_characters="|", blacklist_categories=("Cs", "Cc")),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(
    symbol=st.from_regex(r"[A-Z]{1,5}", fullmatch=True),
    issue_name=_TEXT,
    venue_name=_TEXT,
    mpid=st.from_regex(r"[A-Z]{4}", fullmatch=True),
    quantity=st.integers(min_value=0, max_value=2**63 - 1),
    trades=st.integers(min_value=0, max_value=10**12),
    updated=st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31)),
    tier=st.sampled_from(sorted(TIER_CODES)),
)
def test_valid_rows_round_trip(
    symbol: str,
    issue_name: str,
    venue_name: str,
    mpid: str,
    quantity: int,
    trades: int,
    updated: date,
    tier: str,
) -> None:
    line = "|".join(
        [
            tier,
            symbol,
            issue_name,
            venue_name,
            mpid,
            str(quantity),
            str(trades),
            updated.isoformat(),
        ]
    )
    (row,) = parse_rows(line, expected_tier=TIER_CODES[tier])
    assert row.reject_reason is None
    assert row.raw == line
    assert (row.symbol, row.mpid, row.share_quantity, row.trade_count) == (
        symbol,
        mpid,
        quantity,
        trades,
    )
    assert (row.issue_name, row.venue_name) == (issue_name.strip(), venue_name.strip())
    assert row.last_update_date == updated


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=60).filter(lambda line: b"\n" not in line), max_size=8))
def test_arbitrary_data_lines_give_one_row_each_or_a_utf8_error(lines: list[bytes]) -> None:
    parser = WeeklyFileParser([HEADER_LINE.encode(), *lines, GOOD_ROW.encode()])
    try:
        rows = list(parser)
    except FileFormatError as error:
        assert error.detail.startswith("not valid UTF-8")
        return
    non_blank = [line for line in lines if line.rstrip(b"\r\n").strip(b" \t")]
    assert len(rows) == len(non_blank) + 1
    assert parser.rows_read == len(rows)
    assert parser.rejects == sum(1 for row in rows if row.reject_reason)
    for row in rows:
        assert row.reject_reason is not None or (
            row.share_quantity is not None and row.symbol and row.mpid
        )
