"""A Redis server of a test's own, on a free loopback port, that the test may stop.

``RedisServer.start()`` launches ``redis-server`` without persistence (a restart comes
back empty, like a Redis whose data was lost) and waits until it answers; ``stop()``
shuts it down (SIGKILL, like a crash); ``restart`` starts it again on the same port.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RedisServer:
    """One ``redis-server`` subprocess on ``port``."""

    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed")
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(  # noqa: S603 - a fixed binary, our arguments
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
                + ["--appendonly", "no", "--dir", str(self.log_path.parent)],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited:\n{self.log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"redis-server on {self.port} did not answer in {timeout}s")
            time.sleep(0.05)

    def answers(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def stop(self, *, save: bool = False) -> None:
        """SIGKILL (data lost); with ``save``, write a snapshot first that ``start``
        loads again (an outage that keeps the broker's data)."""
        if self.process is not None and self.process.poll() is None:
            if save:
                self.client().shutdown(save=True)
                self.process.wait(timeout=30)
            else:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=5)


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A fresh Redis of the test's own (stopped at the end)."""
    server = RedisServer(port=free_port(), log_path=tmp_path / "redis.log")
    server.start()
    yield server
    server.stop()
