"""Bounded, printable forms of untrusted text for error messages and stored errors.

Every message that quotes input uses :func:`quote`; every error or traceback that is
stored or logged goes through :func:`bounded` first.
"""

from __future__ import annotations

import re

__all__ = [
    "QUOTE_CHARS",
    "STORED_TEXT_CHARS",
    "bounded",
    "human_duration",
    "printable",
    "quote",
    "shorten",
]

#: The most characters of an input an error message quotes.
QUOTE_CHARS = 200
#: The most characters of an error or traceback that is stored or logged.
STORED_TEXT_CHARS = 64 * 1024
#: Room kept for the truncation marker, so a bounded text is never over its limit.
_MARKER_ROOM = 48
#: C0 and C1 control characters and DEL.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def quote(value: object, limit: int = QUOTE_CHARS) -> str:
    """``repr``-style quote of at most ``limit`` characters of ``value``.

    Control and other unprintable characters come out escaped (``'\\x00'``, ``'\\n'``);
    a longer value is cut and its full length said: ``'AAAA…' (1,048,576 characters)``.
    A value that is not text is shown by its ``repr``, cut the same way.
    """
    if not isinstance(value, str):
        return shorten(repr(value), limit)
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}… ({len(value):,} characters)"


def shorten(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text):,} characters)"


def printable(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` with control characters escaped as ``repr`` would (``\\n``, ``\\x00``),
    then :func:`shorten`-ed to ``limit`` characters; for messages that embed input."""
    if not text.isprintable():
        text = _CONTROL.sub(lambda match: repr(match.group())[1:-1], text)
    return shorten(text, limit)


def bounded(text: str, limit: int = STORED_TEXT_CHARS) -> str:
    """``text`` made safe to store and log: NUL escaped, at most ``limit`` characters.

    A longer text keeps its start and its end (where a traceback names the error)
    around a marker such as ``… [truncated 123,456 characters] …``. Idempotent.
    """
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if len(text) <= limit:
        return text
    keep = max(limit - _MARKER_ROOM, 2)
    head, tail = text[: keep - keep // 2], text[len(text) - keep // 2 :]
    return f"{head} … [truncated {len(text) - keep:,} characters] … {tail}"


def human_duration(seconds: float | None) -> str:
    """``0.42 s``, ``2 min 05 s``, ``1 h 02 min``, ``3 d 04 h``; ``—`` for no duration."""
    if seconds is None:
        return "—"
    if seconds < 0:
        return f"-{human_duration(-seconds)}"
    if seconds < 60:
        return f"{seconds:.2f} s" if seconds < 10 else f"{seconds:.1f} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes:02d} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours:02d} h"
