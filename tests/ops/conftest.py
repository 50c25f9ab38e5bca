"""Fixtures for the operations console: users, an admin client, the local backend,
diagnostic pipelines, a few weeks of generated OTC data, and a run-command helper."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client

from executions.backends import get_backend
from executions.pipelines import register_diagnostic_pipelines
from otc.models import Capture
from tests.support.otc_weeks import computed_weeks


@pytest.fixture(scope="session", autouse=True)
def diagnostic_pipelines() -> None:
    register_diagnostic_pipelines()


@pytest.fixture
def local_backend(settings: Any) -> Any:
    """Executions run in this process, right after their commit."""
    settings.EXECUTION_BACKEND = "local"
    return get_backend()


@pytest.fixture
def stub(stub_backend: Any) -> Any:
    """The stub backend ("the broker"), by the name the console tests use."""
    return stub_backend


def make_user(username: str, *perms: str, staff: bool = True, superuser: bool = False) -> User:
    user = User.objects.create_user(
        username=username, password="a-test-password-123", is_staff=staff, is_superuser=superuser
    )
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)


@pytest.fixture
def superuser(db: None) -> User:
    return make_user("root", superuser=True)


@pytest.fixture
def viewer(db: None) -> User:
    """Staff who may look at executions but not act on them."""
    return make_user("viewer", "executions.view_execution", "dlq.view_deadletter")


@pytest.fixture
def admin_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def viewer_client(viewer: User) -> Client:
    client = Client()
    client.force_login(viewer)
    return client


@pytest.fixture
def run_immediately(django_capture_on_commit_callbacks: Any) -> Callable[..., Any]:
    """A context manager that runs on-commit hooks (the Dispatcher's hand-off) at exit."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


@pytest.fixture
def run_command() -> Callable[..., Result]:
    """Call a management command; return its exit code and output instead of raising."""

    def run(*args: str, **options: Any) -> Result:
        out, err = io.StringIO(), io.StringIO()
        code = 0
        try:
            call_command(*args, stdout=out, stderr=err, **options)
        except CommandError as exc:
            code = exc.returncode
            err.write(str(exc))
        except SystemExit as exc:
            code = int(exc.code or 0)
        return Result(code, out.getvalue(), err.getvalue())

    return run


@pytest.fixture
def otc_weeks(db: None, tmp_path: Path) -> Iterator[list[Capture]]:
    """Three consecutive T1 weeks of generated data, ingested and computed."""
    yield computed_weeks(tmp_path, weeks=3)
