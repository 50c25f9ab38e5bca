"""gunicorn serves the admin and API-docs assets itself, without a CDN or proxy."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client, override_settings

pytestmark = pytest.mark.embedded


def test_collected_assets_are_served_by_the_app(tmp_path: Path) -> None:
    with override_settings(STATIC_ROOT=tmp_path):
        call_command("collectstatic", "--no-input", verbosity=0)
        assert (tmp_path / "admin" / "css" / "base.css").exists()
        swagger = list((tmp_path / "drf_spectacular_sidecar").rglob("swagger-ui-bundle.js"))
        assert swagger, "Swagger UI assets are collected locally"
        client = Client()
        response = client.get("/static/admin/css/base.css")
        assert response.status_code == 200
        assert b"".join(response.streaming_content)
