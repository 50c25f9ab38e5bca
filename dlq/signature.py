"""Error signatures: the stable hash that groups dead letters failing the same way.

Pure functions, no database: the exception class and the message with everything that
varies from run to run (numbers, ids, hex, UUIDs, paths, dates and times) replaced by
placeholders, hashed with the pipeline and the failure kind. See docs/dlq.md.
"""

from __future__ import annotations

import hashlib
import re

SIGNATURE_LENGTH = 16
SIGNATURE_RE = re.compile(r"^[0-9a-f]{16}$")
MESSAGE_LIMIT = 2000

# A class name: optionally dotted, its last part capitalised ("fenced: ..." is not one).
_CLASS = re.compile(r"^\s*((?:[A-Za-z_]\w*\.)*[A-Z]\w*)\s*(?::|$)")
# Order matters: the wider shapes first, so a UUID is not eaten as hex and numbers. A
# UUID written without hyphens is bare hex below (a long run of digits is a number).
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (
        re.compile(
            r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"
        ),
        "<uuid>",
    ),
    (
        re.compile(
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?"
            r"(?:Z|[+-]\d{2}:?\d{2}|\s?UTC)?"
        ),
        "<datetime>",
    ),
    (re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}/\d{1,2}/\d{2,4}\b"), "<date>"),
    (re.compile(r"\b\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?\b"), "<time>"),
    (
        re.compile(r"(?:[A-Za-z]:\\|\\\\|~/|\.{1,2}/|/)(?:[\w.\-~@+%]+[/\\]?)+"),
        "<path>",
    ),
    (re.compile(r"\b0x[0-9a-fA-F]+\b"), "<hex>"),
    # Bare hex of 8+ chars with at least one digit and one letter (hashes, object ids).
    (re.compile(r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b"), "<hex>"),
    # Numbers not glued to a name ("row 1234", "30s"; "tier T1" stays).
    (re.compile(r"(?<![A-Za-z_])[-+]?\d+(?:[.,]\d+)*"), "<n>"),
)
_SPACE = re.compile(r"\s+")


def error_class(error: str, traceback: str = "") -> str:
    """The exception class named by the error (``ValueError: ...``), else by the
    traceback's last line; empty when neither names one (a time-out, a lost worker)."""
    match = _CLASS.match(error or "")
    if match:
        return match.group(1)[:200]
    for line in reversed((traceback or "").strip().splitlines()):
        line = line.strip()
        if line:
            last = _CLASS.match(line)
            return last.group(1)[:200] if last else ""
    return ""


def normalise_message(error: str) -> str:
    """The error text with its variable parts replaced by placeholders, whitespace
    collapsed; the same failure with another id, file, week or count reads the same."""
    text = (error or "")[: MESSAGE_LIMIT * 4]
    for pattern, placeholder in _PATTERNS:
        text = pattern.sub(placeholder, text)
    return _SPACE.sub(" ", text).strip()[:MESSAGE_LIMIT]


def error_signature(
    pipeline: str, error: str, traceback: str = "", *, failure_kind: str = ""
) -> str:
    """The signature of a failure: a short hex hash of pipeline, failure kind, exception
    class and normalised message."""
    cls = error_class(error, traceback)
    message = normalise_message(error)
    if cls and message.startswith(cls):
        message = message[len(cls) :].lstrip(": ")
    payload = "\x1f".join((pipeline, failure_kind, cls, message))
    return hashlib.sha256(payload.encode("utf-8", "surrogatepass")).hexdigest()[:SIGNATURE_LENGTH]


def is_signature(value: str) -> bool:
    """Whether ``value`` has the shape of a signature (16 lower-case hex digits)."""
    return bool(SIGNATURE_RE.fullmatch(value or ""))
