"""Errors that quote FINRA's answers or a caller's values quote them briefly and printably."""

from __future__ import annotations

import httpx
import pytest

from otc.finra import FinraHTTPError, FinraProtocolError, api_rows_to_lines
from otc.finra.client import _int_header
from otc.parser import parse_tier

pytestmark = pytest.mark.embedded

MB = 1 << 20


def assert_short(message: str) -> None:
    assert len(message) < 400, message[:500]
    assert message.isprintable()


def test_an_http_error_body_is_excerpted_printably() -> None:
    error = FinraHTTPError(500, "oops\x00\n" + "b" * MB, url="https://api.finra.org/x")
    assert error.body_excerpt.startswith("oops\\x00\\nbbb")
    assert_short(str(error))


def test_a_paging_header_is_quoted_briefly() -> None:
    headers = httpx.Headers({"Record-Total": "9" * 5000 + "x"})
    with pytest.raises(FinraProtocolError) as caught:
        _int_header(headers, "Record-Total", "page 1", required=True)
    assert_short(str(caught.value))
    assert "(5,001 characters)" in str(caught.value)


@pytest.mark.parametrize("value", ["a|b" + "c" * MB, "line\n" * MB, {"nested": ["x" * MB]}])
def test_an_api_value_that_cannot_be_rendered_is_quoted_briefly(value: object) -> None:
    row = {
        "tierDescription": "NMS Tier 1",
        "issueSymbolIdentifier": "AAPL",
        "issueName": value,
        "marketParticipantName": "Venue",
        "MPID": "ABCD",
        "totalWeeklyShareQuantity": 1,
        "totalWeeklyTradeCount": 1,
        "lastUpdateDate": "2025-12-15",
    }
    with pytest.raises(FinraProtocolError) as caught:
        list(api_rows_to_lines([[row]]))
    assert_short(str(caught.value))
    assert str(caught.value).startswith("API row 1: field 'issueName' ")


def test_an_unknown_tier_is_quoted_briefly() -> None:
    with pytest.raises(ValueError) as caught:
        parse_tier("T" * MB + "\x00")
    assert_short(str(caught.value))
    assert str(caught.value).endswith(": expected one of T1, T2, OTC (or OTCE)")
