"""Errors raised by the FINRA Query API client."""

from __future__ import annotations

from datetime import datetime

from spine.text import printable

#: How much of an error response body is kept on a :class:`FinraHTTPError`.
BODY_EXCERPT_CHARS = 300


class FinraError(Exception):
    """Base class: anything that went wrong while talking to FINRA."""


class FinraUnavailable(FinraError):
    """The circuit breaker is open: the call was refused without contacting FINRA.

    Raised so that callers fail fast (and say until when) while FINRA is down,
    instead of piling retries onto an outage.
    """

    def __init__(self, open_until: datetime) -> None:
        self.open_until = open_until
        until = open_until.isoformat(timespec="milliseconds")
        super().__init__(f"FINRA API unavailable, circuit open until {until}")


class FinraHTTPError(FinraError):
    """FINRA answered with an HTTP error status (after retries, if it was retryable)."""

    def __init__(
        self,
        status: int,
        body_excerpt: str,
        *,
        url: str = "",
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.body_excerpt = printable(body_excerpt[:BODY_EXCERPT_CHARS], BODY_EXCERPT_CHARS)
        self.url = url
        #: Seconds the server asked us to wait (``Retry-After``), if it said so.
        self.retry_after = retry_after
        where = f" for {url}" if url else ""
        detail = f": {self.body_excerpt}" if self.body_excerpt else ""
        super().__init__(f"FINRA API returned HTTP {status}{where}{detail}")

    @property
    def retryable(self) -> bool:
        """Whether another attempt may succeed: throttling (429) and server errors (5xx)."""
        return self.status == 429 or self.status >= 500


class FinraTransportError(FinraError):
    """No usable HTTP answer: connection failure or timeout, after all retries.

    The underlying ``httpx`` exception is chained as ``__cause__``.
    """


class FinraProtocolError(FinraError):
    """FINRA answered, but the answer breaks the API contract.

    Examples: a body that is not a JSON array of objects, a missing or
    non-numeric ``Record-Total`` header, a page shorter than the paging headers
    promise, or a row missing a required field. The message names the problem
    and where (offset, page or row), because a silently short capture is worse
    than a failed one.
    """
