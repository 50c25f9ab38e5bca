"""Prometheus metrics: the project's own collectors and the restricted ``/metrics`` view."""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, Counter, generate_latest

from spine.api.errors import json_error, method_not_allowed
from spine.prometheus import scrape_registry

RATELIMIT_REJECTIONS = Counter(
    "spine_ratelimit_rejections_total",
    "API requests refused with 429 because the client spent its budget.",
    ["budget"],
)
RATELIMIT_STORE_ERRORS = Counter(
    "spine_ratelimit_store_errors_total",
    "Rate-limit checks that could not reach the counter store (the request was let through).",
    ["budget"],
)


@lru_cache(maxsize=32)
def _networks(
    entries: tuple[str, ...],
) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            continue  # a typo in the setting admits nobody rather than crashing scrapes
    return tuple(networks)


def ip_allowed(remote_addr: str | None, allowed: list[str] | tuple[str, ...]) -> bool:
    """Whether ``remote_addr`` is one of the allowed addresses or networks."""
    if not remote_addr:
        return False
    try:
        address = ipaddress.ip_address(remote_addr)
    except ValueError:
        return False
    return any(address in network for network in _networks(tuple(allowed)))


def token_allowed(authorization: str | None, token: str) -> bool:
    """Whether the ``Authorization`` header carries the metrics bearer token."""
    if not token or not authorization:
        return False
    scheme, _, value = authorization.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(value.strip(), token)


def metrics_view(request: HttpRequest) -> HttpResponse:
    """The exposition of :func:`spine.prometheus.scrape_registry`, behind the address/token
    check (django-prometheus's own view reads the directory from the environment only)."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed(["GET", "HEAD"])
    allowed = token_allowed(
        request.headers.get("Authorization"), settings.SPINE_METRICS_TOKEN
    ) or ip_allowed(request.META.get("REMOTE_ADDR"), settings.SPINE_METRICS_ALLOWED_IPS)
    if not allowed:
        return json_error(
            403,
            "permission_denied",
            "Metrics are restricted: call from an allowed address or send the metrics token.",
        )
    return HttpResponse(generate_latest(scrape_registry()), content_type=CONTENT_TYPE_LATEST)
