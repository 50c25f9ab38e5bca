"""The raw archive in ``/health/ready`` (non-critical: degraded when it fails) and in
``manage.py doctor``, on the filesystem and on the S3 server."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client

from otc import archive
from tests.support.s3_server import S3Server, s3_archive_settings, use_archive

pytestmark = pytest.mark.django_db


def _ready() -> dict[str, Any]:
    response = Client().get("/health/ready")
    return json.loads(response.content)


def test_ready_reports_a_writable_archive(archive_kind: str, settings: Any) -> None:
    settings.REDIS_URL = None
    body = _ready()
    check = body["checks"]["archive"]
    assert check["status"] == "ok" and check["critical"] is False, check
    assert check["location"] == archive.describe_storage()
    assert check["detail"] == f"writable at {check['location']}"
    assert body["status"] == "ok"
    assert archive.archive_storage().listdir("probe")[1] == []


def test_unreachable_bucket_is_degraded_not_down(settings: Any, s3_server: S3Server) -> None:
    settings.REDIS_URL = None
    use_archive(settings, s3_archive_settings(s3_server.config("spine-missing-bucket")))
    body = _ready()
    check = body["checks"]["archive"]
    assert check["status"] == "fail" and "spine-missing-bucket" in check["detail"], check
    assert "not writable" in check["detail"] and "spine-test-secret" not in json.dumps(body)
    assert body["status"] == "degraded"


@pytest.mark.embedded
def test_doctor_lists_the_archive(settings: Any) -> None:
    from ops.doctor import run_checks

    checks = {check.name: check for check in run_checks()}
    assert checks["archive"].status == "ok"
    assert checks["archive"].detail == f"writable at {archive.describe_storage()}"
