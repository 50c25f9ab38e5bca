"""The raw archive's settings: filesystem by default, S3 with SPINE_ARCHIVE_URL, secrets
never echoed, a bad value stops manage.py with one line (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from spine.config import BASE_DIR, DEFAULT_ARCHIVE_DIR, load_config

pytestmark = pytest.mark.embedded


def test_filesystem_by_default() -> None:
    config = load_config({})
    assert config.archive_s3 is None
    assert config.archive_dir == DEFAULT_ARCHIVE_DIR == BASE_DIR / "var" / "archive"
    assert load_config({"SPINE_ARCHIVE_DIR": "data/arch"}).archive_dir == BASE_DIR / "data/arch"


def test_s3_url_endpoint_and_credentials() -> None:
    config = load_config(
        {
            "SPINE_ARCHIVE_URL": "s3://market-spine/raw/finra/",
            "SPINE_ARCHIVE_ENDPOINT_URL": "http://minio:9000",
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE",
            "AWS_SECRET_ACCESS_KEY": "hunter2-secret",
            "AWS_DEFAULT_REGION": "eu-west-1",
        }
    ).archive_s3
    assert config is not None
    assert (config.bucket, config.prefix, config.url) == (
        "market-spine",
        "raw/finra",
        "s3://market-spine/raw/finra",
    )
    options = config.storage_options()
    assert options["bucket_name"] == "market-spine" and options["location"] == "raw/finra"
    assert options["endpoint_url"] == "http://minio:9000"
    assert options["addressing_style"] == "path" and options["file_overwrite"] is True
    assert options["region_name"] == "eu-west-1"
    assert (options["access_key"], options["secret_key"]) == ("AKIAEXAMPLE", "hunter2-secret")
    assert "hunter2" not in repr(config)


def test_s3_without_credentials_leaves_them_to_boto3() -> None:
    config = load_config({"SPINE_ARCHIVE_URL": "s3://spine-archive"}).archive_s3
    assert config is not None and config.prefix == "" and config.url == "s3://spine-archive"
    options = config.storage_options()
    assert "access_key" not in options and "endpoint_url" not in options


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"SPINE_ARCHIVE_URL": "file:///tmp/x"}, "SPINE_ARCHIVE_URL='file:///tmp/x' is not an s3"),
        ({"SPINE_ARCHIVE_URL": "s3://"}, "SPINE_ARCHIVE_URL='s3://' names no valid bucket"),
        ({"SPINE_ARCHIVE_URL": "s3://Bad_Bucket"}, "names no valid bucket"),
        ({"SPINE_ARCHIVE_URL": "s3://ab"}, "names no valid bucket"),
        ({"SPINE_ARCHIVE_URL": "s3://bucket/a b"}, "has a prefix with characters"),
        ({"SPINE_ARCHIVE_URL": "s3://bucket/p?x=1"}, "carries credentials, a query"),
        (
            {"SPINE_ARCHIVE_URL": "s3://key:hunter2@bucket/p"},
            "SPINE_ARCHIVE_URL='s3://key:***@bucket/p' carries credentials",
        ),
        (
            {"SPINE_ARCHIVE_URL": "s3://bucket", "SPINE_ARCHIVE_ENDPOINT_URL": "minio:9000"},
            "SPINE_ARCHIVE_ENDPOINT_URL='minio:9000' is not a URL",
        ),
        (
            {"SPINE_ARCHIVE_ENDPOINT_URL": "http://minio:9000"},
            "SPINE_ARCHIVE_ENDPOINT_URL is set but SPINE_ARCHIVE_URL is not",
        ),
        (
            {"SPINE_ARCHIVE_URL": "s3://bucket", "AWS_ACCESS_KEY_ID": "AKIA"},
            "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not",
        ),
        (
            {"SPINE_ARCHIVE_URL": "s3://bucket", "AWS_SECRET_ACCESS_KEY": "hunter2"},
            "AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not",
        ),
        (
            {"SPINE_ARCHIVE_URL": "s3://bucket", "AWS_DEFAULT_REGION": "us east"},
            "AWS_DEFAULT_REGION='us east' is not a region name",
        ),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        load_config(environ)
    assert message in str(excinfo.value)
    assert "hunter2" not in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_manage_py_stops_with_one_line(project_root: Path, tmp_path: Path) -> None:
    venv_bin = Path(sys.executable).parent
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=project_root,
        env={
            "PATH": f"{venv_bin}:/usr/bin:/bin",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'x.sqlite3'}",
            "SPINE_ARCHIVE_URL": "s3://key:hunter2@bucket",
        },
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("config error: SPINE_ARCHIVE_URL='s3://key:***@bucket'")
    assert len(result.stderr.splitlines()) == 1 and "hunter2" not in result.stderr
