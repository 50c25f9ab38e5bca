"""Prometheus metrics: the project's own collectors and the restricted ``/metrics`` view.

django-prometheus provides the request, database and cache metrics; the collectors
defined here belong to the API platform (apps keep theirs in their own ``metrics``
module; all are served from the one registry).

``/metrics`` is for the monitoring system only: a caller is let in when its address
is in ``SPINE_METRICS_ALLOWED_IPS`` (addresses or CIDR networks) or when it sends
``Authorization: Bearer <SPINE_METRICS_TOKEN>``. It is never rate limited.
"""

from __future__ import annotations

import hmac
import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django_prometheus.exports import ExportToDjangoView
from prometheus_client import Counter

from spine.api.errors import json_error, method_not_allowed

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
    """django-prometheus's exposition, behind the address/token check."""
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
    return ExportToDjangoView(request)
