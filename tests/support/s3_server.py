"""A real S3 API server for the suite: moto's standalone server in a subprocess on a free
loopback port, and fixtures that point ``STORAGES["archive"]`` at a fresh bucket."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from spine.config import ArchiveS3
from tests.support.redis_server import free_port

ACCESS_KEY = "spine-test-key"
SECRET_KEY = "spine-test-secret"  # noqa: S105 - moto accepts any credentials
REGION = "us-east-1"


@dataclass
class S3Server:
    """``python -m moto.server`` on ``port``; buckets are created per test."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60) -> None:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - our interpreter, our arguments
                [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"moto server on {self.port} did not answer in {timeout}s")
            time.sleep(0.1)

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=2):  # noqa: S310
                return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def config(self, bucket: str, prefix: str = "") -> ArchiveS3:
        return ArchiveS3(bucket, prefix, self.endpoint_url, REGION, ACCESS_KEY, SECRET_KEY)

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=REGION,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        )

    def new_bucket(self) -> str:
        bucket = f"spine-test-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=bucket)
        return bucket


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """One S3 API server for the session (started on first use)."""
    server = S3Server(free_port(), tmp_path_factory.mktemp("s3") / "moto.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


def s3_archive_settings(config: ArchiveS3) -> dict[str, Any]:
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": config.storage_options()}


def use_archive(settings: Any, backend: dict[str, Any]) -> None:
    """Point ``STORAGES["archive"]`` at ``backend``; a new dict, so Django's
    setting_changed receiver drops the cached storages."""
    settings.STORAGES = {**settings.STORAGES, "archive": backend}


@pytest.fixture
def s3_archive(settings: Any, s3_server: S3Server) -> ArchiveS3:
    """The archive on a fresh bucket (under a prefix, as production may use)."""
    config = s3_server.config(s3_server.new_bucket(), "raw")
    use_archive(settings, s3_archive_settings(config))
    return config


@pytest.fixture(params=[pytest.param("filesystem", marks=pytest.mark.embedded), pytest.param("s3")])
def archive_kind(request: pytest.FixtureRequest) -> str:
    """Each archive test twice: on the filesystem (the root fixture's directory) and on
    a fresh bucket of the S3 server."""
    if request.param == "s3":
        request.getfixturevalue("s3_archive")
    return str(request.param)
