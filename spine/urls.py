"""Market Spine's URL map."""

from django.contrib import admin
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt

from ops.overview import overview_view
from otc.admin_intake import ingest_file_view
from otc.admin_lines import capture_lines_view
from spine import health
from spine.metrics import metrics_view

urlpatterns = [
    path(
        "admin/operations/",
        admin.site.admin_view(overview_view),
        name="admin-operations-overview",
    ),
    path("admin/otc/ingest/", admin.site.admin_view(ingest_file_view), name="admin-otc-ingest"),
    path(
        "admin/otc/capture/<int:capture_id>/lines/",
        admin.site.admin_view(capture_lines_view),
        name="admin-otc-capture-lines",
    ),
    path("admin/", admin.site.urls),
    path("api/", include("spine.api.urls")),
    # Probes and scrapes: never rate limited, never authenticated, JSON 405 for POSTs.
    re_path(r"^health/live/?$", csrf_exempt(health.live), name="health-live"),
    re_path(r"^health/ready/?$", csrf_exempt(health.ready), name="health-ready"),
    path("metrics", csrf_exempt(metrics_view), name="prometheus-django-metrics"),
]

handler400 = "spine.api.errors.handler400"
handler403 = "spine.api.errors.handler403"
handler404 = "spine.api.errors.handler404"
handler500 = "spine.api.errors.handler500"
