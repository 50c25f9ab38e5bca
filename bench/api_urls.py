"""URL map for ``bench/api.py`` only: the application's URLs plus an empty DRF view.

The empty view goes through everything a data endpoint does — middleware, token
authentication, the rate-limit budget, the permission policy, JSON rendering — and
nothing else, so the gap between the two is what the endpoint's own work costs. It is
served only when ``DJANGO_SETTINGS_MODULE=bench.api_settings``; the application's URL
map never includes it.
"""

from __future__ import annotations

from typing import Any

from django.urls import path
from rest_framework.request import Request
from rest_framework.response import Response

from spine.api.views import SpineAPIView
from spine.urls import handler400, handler403, handler404, handler500
from spine.urls import urlpatterns as app_urls

EMPTY_PATH = "api/v1/bench/empty/"


class EmptyView(SpineAPIView):
    """Answers ``{}``: the cost of the API stack itself."""

    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return Response({})


urlpatterns = [path(EMPTY_PATH, EmptyView.as_view(), name="bench-empty"), *app_urls]

__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
