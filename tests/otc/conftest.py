"""Fixtures shared by the OTC tests: the local fake FINRA Query API and clients on it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import pybreaker
import pytest
from pytest_httpserver import HTTPServer

import otc.services.fetch
from otc.finra import FinraClient, FinraClientConfig, build_breaker, process_rate_limiter
from tests.otc.finra_server import FakeFinra

#: The date these clients count FINRA's 12-month window from: the fake's weeks (late
#: 2025) are in weeklySummary, clear of its edge.
FAKE_TODAY = date(2026, 1, 5)


@pytest.fixture(scope="module")
def finra_http_server() -> Iterator[HTTPServer]:
    # Threaded, so a deliberately hung reply does not block the retries behind it.
    server = HTTPServer(host="127.0.0.1", threaded=True)
    server.start()
    yield server
    server.clear()
    server.stop()


@pytest.fixture
def finra(finra_http_server: HTTPServer) -> Iterator[FakeFinra]:
    """A fresh fake FINRA (no datasets, no scripts) on the module's server."""
    fake = FakeFinra(finra_http_server)
    yield fake
    fake.release_hung()
    finra_http_server.check_handler_errors()  # a bug in the fake must not pass as a 500


@pytest.fixture
def breaker() -> pybreaker.CircuitBreaker:
    """A fresh in-memory circuit breaker for this test's FINRA clients."""
    return build_breaker(fail_max=3, reset_timeout=60)


@pytest.fixture
def finra_config(
    settings: Any, finra: FakeFinra, breaker: pybreaker.CircuitBreaker, monkeypatch: Any
) -> FinraClientConfig:
    """FINRA settings on the fake (pages of 10, no retries), the local backend, and
    ``otc.services.fetch.finra_client`` handing out clients with this test's breaker."""
    config = FinraClientConfig(
        base_url=finra.base_url,
        read_timeout=5.0,
        page_size=10,
        max_retries=0,
        requests_per_second=1000.0,
    )
    settings.FINRA_CLIENT = config
    settings.EXECUTION_BACKEND = "local"

    def client() -> FinraClient:
        return FinraClient(
            config,
            breaker=breaker,
            rate_limiter=process_rate_limiter(1000.0),
            today=lambda: FAKE_TODAY,
        )

    monkeypatch.setattr(otc.services.fetch, "finra_client", client)
    return config
