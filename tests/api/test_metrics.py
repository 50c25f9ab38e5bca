"""``/metrics``: django-prometheus plus the project's counters, behind IPs or a token."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from spine.metrics import ip_allowed, token_allowed

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def test_allowed_address_scrapes(settings) -> None:
    settings.SPINE_METRICS_ALLOWED_IPS = ["127.0.0.1"]
    response = Client().get("/metrics")
    assert response.status_code == 200
    text = response.content.decode()
    assert "django_http_requests_before_middlewares_total" in text
    assert "spine_ratelimit_rejections_total" in text or "# HELP spine_ratelimit" in text


def test_other_addresses_are_refused_in_the_standard_shape(settings) -> None:
    settings.SPINE_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    settings.SPINE_METRICS_TOKEN = ""
    response = Client(REMOTE_ADDR="192.168.1.7").get("/metrics")
    assert response.status_code == 403
    assert json.loads(response.content)["error"]["code"] == "permission_denied"


def test_cidr_networks_are_allowed(settings) -> None:
    settings.SPINE_METRICS_ALLOWED_IPS = ["10.0.0.0/8"]
    assert Client(REMOTE_ADDR="10.1.2.3").get("/metrics").status_code == 200


def test_bearer_token_admits_from_anywhere(settings) -> None:
    settings.SPINE_METRICS_ALLOWED_IPS = []
    settings.SPINE_METRICS_TOKEN = "s3cret-scrape-token"
    client = Client(REMOTE_ADDR="203.0.113.9")
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer s3cret-scrape-token")
    assert ok.status_code == 200


def test_metrics_is_never_rate_limited(settings) -> None:
    settings.SPINE_RATELIMIT_READ = "1/d"
    client = Client()
    for _ in range(3):
        response = client.get("/metrics")
        assert response.status_code == 200
        assert "X-RateLimit-Limit" not in response


def test_post_is_405() -> None:
    assert Client().post("/metrics").status_code == 405


@pytest.mark.parametrize(
    ("address", "allowed", "expected"),
    [
        ("127.0.0.1", ["127.0.0.1", "::1"], True),
        ("::1", ["127.0.0.1", "::1"], True),
        ("10.0.0.5", ["127.0.0.1"], False),
        ("", ["127.0.0.1"], False),
        ("not-an-ip", ["127.0.0.1"], False),
        ("10.0.0.5", ["garbage", "10.0.0.0/24"], True),
    ],
)
def test_ip_allowed(address: str, allowed: list[str], expected: bool) -> None:
    assert ip_allowed(address, allowed) is expected


def test_token_allowed_needs_a_configured_token() -> None:
    assert token_allowed("Bearer ", "") is False
    assert token_allowed("Bearer abc", "abc") is True
    assert token_allowed("bearer abc", "abc") is True
    assert token_allowed("Token abc", "abc") is False
