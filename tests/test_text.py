"""spine.text: bounded, printable quotes of input and capped stored text."""

from __future__ import annotations

import re

import pytest

from spine.text import QUOTE_CHARS, STORED_TEXT_CHARS, bounded, printable, quote, shorten

pytestmark = pytest.mark.embedded

MB = 1 << 20


def test_quote_is_repr_for_short_text() -> None:
    assert quote("T3") == "'T3'"
    assert quote("") == "''"
    assert quote("it's") == '"it\'s"'
    assert quote("a\x00b\tc\nd\x1b\x85") == "'a\\x00b\\tc\\nd\\x1b\\x85'"
    assert quote(42) == "42" and quote(None) == "None"


def test_quote_cuts_long_text_and_says_how_long_it_was() -> None:
    quoted = quote("x" * MB)
    assert quoted == f"'{'x' * QUOTE_CHARS}'… (1,048,576 characters)"
    assert quote("y" * 50, 10) == "'yyyyyyyyyy'… (50 characters)"
    assert len(quote(list(range(MB)))) < QUOTE_CHARS + 40


def test_quote_of_control_characters_stays_printable_and_bounded() -> None:
    quoted = quote("\x00" * MB)
    assert quoted.isprintable()
    assert len(quoted) < 4 * QUOTE_CHARS + 40


def test_shorten_and_printable() -> None:
    assert shorten("abc") == "abc"
    assert shorten("abcdef", 3) == "abc… (6 characters)"
    assert printable("line\nbreak\x00") == "line\\nbreak\\x00"
    assert printable("é ü 東京") == "é ü 東京"
    assert printable("z" * MB, 5) == "zzzzz… (1,048,576 characters)"


def test_bounded_keeps_short_text_and_escapes_nul() -> None:
    assert bounded("Traceback\n  line\nValueError: x") == "Traceback\n  line\nValueError: x"
    assert bounded("a\x00b") == "a\\x00b"


def test_bounded_caps_long_text_keeping_its_start_and_end() -> None:
    text = "START" + "m" * (10 * MB) + "END"
    capped = bounded(text)
    assert len(capped) <= STORED_TEXT_CHARS
    assert capped.startswith("START") and capped.endswith("END")
    head, marker, tail = re.split(r" (… \[truncated [\d,]+ characters\] …) ", capped)
    removed = int(re.sub(r"\D", "", marker))
    assert len(head) + removed + len(tail) == len(text)
    assert text.startswith(head) and text.endswith(tail)
    assert bounded(capped) == capped
    assert len(bounded("q" * 1000, 100)) <= 100
