"""The API's URL map: one router for every app's viewsets, the schema and its docs.

An app adds its endpoints by registering viewsets on :data:`router` (at the bottom of
this module, one line each) — the router gives them ``/api/v1/<prefix>/`` paths,
names (``<basename>-list``, ``<basename>-detail``...) and the browsable root.
Non-viewset views go in ``extra_v1`` below.
"""

from __future__ import annotations

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from dlq.api import DeadLetterViewSet
from executions.api import ExecutionViewSet, PipelineViewSet
from otc.api import (
    OtcCaptureViewSet,
    OtcQualityViewSet,
    OtcSymbolViewSet,
    OtcVenueViewSet,
    OtcWeekViewSet,
)
from otc.api_files import OtcFileViewSet
from spine.api.errors import api_not_found
from spine.api.permissions import PublicEndpoint
from spine.api.views import SpineAPIMixin

router = DefaultRouter()
router.register("executions", ExecutionViewSet, basename="execution")
router.register("pipelines", PipelineViewSet, basename="pipeline")
router.register("dlq", DeadLetterViewSet, basename="deadletter")
router.register("otc/weeks", OtcWeekViewSet, basename="otc-week")
router.register("otc/symbols", OtcSymbolViewSet, basename="otc-symbol")
router.register("otc/venues", OtcVenueViewSet, basename="otc-venue")
router.register("otc/quality", OtcQualityViewSet, basename="otc-quality")
router.register("otc/captures", OtcCaptureViewSet, basename="otc-capture")
router.register("otc/files", OtcFileViewSet, basename="otc-file")

extra_v1: list = []


class SchemaView(SpineAPIMixin, SpectacularAPIView):
    """The OpenAPI 3 document; public, rate limited like any read."""

    permission_classes = [PublicEndpoint]


class SwaggerView(SpineAPIMixin, SpectacularSwaggerView):
    """Swagger UI, served with its assets from this server (no CDN)."""

    permission_classes = [PublicEndpoint]


urlpatterns = [
    path("v1/", include([*extra_v1, *router.urls])),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("docs/", SwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("auth/", include("rest_framework.urls")),
    # Anything else under /api/ is a JSON 404, also while DEBUG is on.
    re_path(r"^[\s\S]*$", api_not_found),
]
