"""The Docker stack's commands exist in the project."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

pytestmark = pytest.mark.embedded


def load_compose(project_root: Path) -> dict:
    return yaml.safe_load((project_root / "docker" / "compose.yaml").read_text())


def test_compose_has_the_expected_services(project_root: Path) -> None:
    services = load_compose(project_root)["services"]
    assert {"postgres", "redis", "web", "worker", "beat", "migrate"} <= set(services)
    for name in ("postgres", "redis", "web", "worker"):
        assert "healthcheck" in services[name], name
    env = services["web"]["environment"]
    for variable in ("DATABASE_URL", "REDIS_URL", "EXECUTION_BACKEND", "SECRET_KEY", "DEBUG"):
        assert variable in env


def test_every_service_command_exists(project_root: Path) -> None:
    services = load_compose(project_root)["services"]
    commands = get_commands()
    checked = 0
    for name, service in services.items():
        command = service.get("command")
        if not command:
            continue
        checked += 1
        if command[:2] == ["python", "manage.py"]:
            assert command[2] in commands, f"{name}: unknown management command {command[2]}"
        elif command[0] == "celery":
            assert command[1:3] == ["-A", "spine"], name
            from spine.celery import app

            assert app.main == "spine"
            subcommand = command[3]
            assert subcommand in {"worker", "beat"}, name
            if subcommand == "worker":
                queues = command[command.index("--queues") + 1].split(",")
                assert set(queues) == {"default", "backfill", "maintenance"}
            if "--scheduler" in command:
                module, _, attr = command[command.index("--scheduler") + 1].partition(":")
                imported = __import__(module, fromlist=[attr])
                assert getattr(imported, attr)
        elif command[0] == "gunicorn":
            module, _, attr = command[1].partition(":")
            imported = __import__(module, fromlist=[attr])
            assert callable(getattr(imported, attr))
        else:
            pytest.fail(f"{name}: unrecognised command {command}")
    assert checked >= 4
    dockerfile = (project_root / "docker" / "Dockerfile").read_text()
    assert "USER spine" in dockerfile and "gunicorn" in dockerfile


def test_metrics_directory_is_shared_and_emptied_first(project_root: Path) -> None:
    compose = load_compose(project_root)
    services = compose["services"]
    directory = services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    assert "metrics" in compose["volumes"]
    for name in ("web", "worker", "beat", "migrate", "reset-metrics"):
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == directory, name
        assert f"metrics:{directory}" in services[name]["volumes"], name
    assert services["reset-metrics"]["command"] == ["python", "manage.py", "reset_metrics_dir"]
    for name in ("web", "worker", "beat", "migrate"):
        needs = services[name]["depends_on"]["reset-metrics"]
        assert needs == {"condition": "service_completed_successfully"}, name
    web = services["web"]["command"]
    assert web[web.index("--config") + 1] == "python:spine.gunicorn"
    dockerfile = (project_root / "docker" / "Dockerfile").read_text()
    assert f"mkdir -p {directory}" in dockerfile  # the volume starts owned by the app user


def test_the_inbox_is_shared_by_web_and_workers(project_root: Path) -> None:
    compose = load_compose(project_root)
    services = compose["services"]
    directory = services["web"]["environment"]["SPINE_INBOX_DIR"]
    assert "inbox" in compose["volumes"]
    for name in ("web", "worker"):
        assert services[name]["environment"]["SPINE_INBOX_DIR"] == directory, name
        assert f"inbox:{directory}" in services[name]["volumes"], name
    dockerfile = (project_root / "docker" / "Dockerfile").read_text()
    assert directory in dockerfile  # the volume starts owned by the app user


def test_long_running_services_restart_by_themselves(project_root: Path) -> None:
    services = load_compose(project_root)["services"]
    for name in ("web", "worker", "beat"):
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("migrate", "reset-metrics", "schedules"):
        assert services[name].get("restart", "no") == "no", name
