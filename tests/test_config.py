"""Settings parsing: each variable, each bad value's error names the variable; every
entry point (manage.py, gunicorn, the WSGI app, celery) stops on one with one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ImproperlyConfigured

from otc.finra.config import FinraClientConfig
from spine.config import DEFAULT_SQLITE_PATH, DEV_SECRET_KEY, ConfigError, load_config

pytestmark = pytest.mark.embedded


def test_defaults_are_the_embedded_default() -> None:
    config = load_config({})
    assert config.debug is True
    assert config.database["ENGINE"] == "django.db.backends.sqlite3"
    assert config.database["NAME"] == str(DEFAULT_SQLITE_PATH)
    assert config.redis_url is None
    assert config.execution_backend == "local"
    assert config.secret_key == DEV_SECRET_KEY
    assert config.log_format == "json"
    assert config.log_level == "INFO"
    assert config.secure_ssl_redirect is False


def test_postgres_url_and_redis_select_celery() -> None:
    config = load_config(
        {
            "DATABASE_URL": "postgres://spine:pw@db.internal:5433/spine",
            "REDIS_URL": "redis://cache:6379/2",
        }
    )
    db = config.database
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["HOST"], db["PORT"], db["NAME"], db["USER"]) == (
        "db.internal",
        5433,
        "spine",
        "spine",
    )
    assert config.redis_url == "redis://cache:6379/2"
    assert config.execution_backend == "celery"


def test_explicit_backend_wins_over_redis() -> None:
    config = load_config({"REDIS_URL": "redis://x:6379/0", "EXECUTION_BACKEND": "LOCAL"})
    assert config.execution_backend == "local"


def test_sqlite_url(tmp_path) -> None:
    config = load_config({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})
    assert config.database["NAME"] == f"{tmp_path}/x.db"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"DATABASE_URL": "not a url"}, "DATABASE_URL"),
        ({"DATABASE_URL": "mongodb://x/y"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://host:5432"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://x"}, "REDIS_URL"),
        ({"EXECUTION_BACKEND": "kubernetes"}, "EXECUTION_BACKEND"),
        ({"EXECUTION_BACKEND": "celery"}, "EXECUTION_BACKEND=celery needs REDIS_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DEBUG": "false"}, "SECRET_KEY"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"LOG_FORMAT": "xml"}, "LOG_FORMAT"),
        ({"SPINE_HSTS_SECONDS": "soon"}, "SPINE_HSTS_SECONDS"),
        ({"SPINE_HSTS_SECONDS": "-1"}, "SPINE_HSTS_SECONDS"),
        ({"SPINE_RATELIMIT_READ": "lots"}, "SPINE_RATELIMIT_READ"),
        ({"SPINE_PUBLIC_READ": "perhaps"}, "SPINE_PUBLIC_READ"),
        ({"SPINE_HEARTBEAT_SECONDS": "9" * 40}, "SPINE_HEARTBEAT_SECONDS"),
        ({"SPINE_METRICS_ALLOWED_IPS": "10.0.0.0/8, intranet"}, "SPINE_METRICS_ALLOWED_IPS"),
        ({"SPINE_FAILURE_HANDLER": "not a path"}, "SPINE_FAILURE_HANDLER"),
        ({"SPINE_COMMAND_LOG_LEVEL": "chatty"}, "SPINE_COMMAND_LOG_LEVEL"),
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        load_config(environ)
    assert names in str(excinfo.value)
    assert isinstance(excinfo.value, ConfigError)
    assert excinfo.value.variable == names.split("=")[0]
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean (use true or false)"),
        (
            {"DATABASE_URL": "mysql://spine:hunter2@db/spine"},
            "DATABASE_URL='mysql://spine:***@db/spine' names an unsupported database "
            "(use postgres://user:password@host:5432/name or sqlite:///path)",
        ),
        (
            {"REDIS_URL": "http://:hunter2@cache:6379"},
            "REDIS_URL='http://:***@cache:6379' is not a Redis URL "
            "(use redis://host:6379/0, rediss://... or unix://...)",
        ),
        (
            {"SPINE_HSTS_SECONDS": "soon"},
            "SPINE_HSTS_SECONDS='soon' is not a whole number "
            "(use a whole number from 0 to 2147483647)",
        ),
        (
            {"SPINE_REAP_AFTER_SECONDS": "1"},
            "SPINE_REAP_AFTER_SECONDS='1' is out of range "
            "(use a whole number from 2 to 2147483647)",
        ),
        (
            {"LOG_FORMAT": "xml"},
            "LOG_FORMAT='xml' is not one of: json, console",
        ),
    ],
)
def test_messages_say_what_is_allowed(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        load_config(environ)
    assert str(excinfo.value) == message


# The FINRA client's variables are the otc app's, parsed with the same parsers.


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({"FINRA_API_BASE_URL": "ftp://files.finra.org"}, "FINRA_API_BASE_URL"),
        ({"FINRA_API_RPS": "fast"}, "FINRA_API_RPS"),
    ],
)
def test_bad_finra_values_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        FinraClientConfig.from_env(environ)
    assert names in str(excinfo.value)
    assert isinstance(excinfo.value, ConfigError)
    assert excinfo.value.variable == names.split("=")[0]
    assert "\n" not in str(excinfo.value)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"FINRA_API_PAGE_SIZE": "5001"},
            "FINRA_API_PAGE_SIZE='5001' is out of range (use a whole number from 1 to 5000)",
        ),
        (
            {"FINRA_API_TIMEOUT": "inf"},
            "FINRA_API_TIMEOUT='inf' is not a positive number (use e.g. 2.5)",
        ),
        (
            {"FINRA_API_BASE_URL": "api.finra.org"},
            "FINRA_API_BASE_URL='api.finra.org' is not a URL (use http://host or https://host)",
        ),
    ],
)
def test_finra_messages_say_what_is_allowed(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        FinraClientConfig.from_env(environ)
    assert str(excinfo.value) == message


def test_echoed_values_are_bounded_and_escaped() -> None:
    value = "yes\n\x00\x1b[31m" + "x" * 10_000
    with pytest.raises(ConfigError) as excinfo:
        load_config({"DEBUG": value})
    message = str(excinfo.value)
    assert message.startswith("DEBUG='yes\\n\\x00\\x1b[31mxxx")
    assert message.endswith("... (10,010 characters) is not a boolean (use true or false)")
    assert len(message) < 300
    assert message.isprintable()


def test_production_settings_turn_https_on_and_allow_proxy_overrides() -> None:
    prod = {"DEBUG": "false", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "a.example, b.example"}
    config = load_config(prod)
    assert config.allowed_hosts == ["a.example", "b.example"]
    assert config.secure_ssl_redirect and config.secure_cookies
    assert config.hsts_seconds == 31_536_000
    behind_proxy = load_config(
        {**prod, "SPINE_SECURE_SSL_REDIRECT": "false", "SPINE_TRUST_X_FORWARDED_PROTO": "true"}
    )
    assert behind_proxy.secure_ssl_redirect is False
    assert behind_proxy.trust_forwarded_proto is True


def test_bad_value_stops_django_start_up(project_root) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=project_root,
        env={"PATH": "/usr/bin:/bin", "EXECUTION_BACKEND": "nope"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "EXECUTION_BACKEND='nope' is not one of: local, celery, stub" in result.stderr


def test_metrics_directory_is_optional_and_checked(tmp_path, monkeypatch) -> None:
    assert load_config({}).prometheus_multiproc_dir is None
    config = load_config({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert config.prometheus_multiproc_dir == tmp_path
    a_file = tmp_path / "file"
    a_file.write_text("")
    refused = {
        "": "set but empty",
        str(tmp_path / "missing"): "not an existing directory",
        str(a_file): "not an existing directory",
    }
    for value, reason in refused.items():
        with pytest.raises(ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR") as excinfo:
            load_config({"PROMETHEUS_MULTIPROC_DIR": value})
        assert reason in str(excinfo.value)
    with pytest.raises(ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR"):
        load_config({"prometheus_multiproc_dir": str(tmp_path)})
    # Permission bits do not stop root, so the writability check is exercised directly.
    monkeypatch.setattr("spine.config.os.access", lambda path, mode: False)
    with pytest.raises(ImproperlyConfigured, match="PROMETHEUS_MULTIPROC_DIR=.* not writable"):
        load_config({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})


# --- entry points ------------------------------------------------------------------------

MANAGE_DOCTOR = [sys.executable, "manage.py", "doctor"]
VENV_BIN = Path(sys.executable).parent
ENTRY_POINTS = {
    "manage.py": MANAGE_DOCTOR,
    "wsgi": [sys.executable, "-c", "import spine.wsgi"],
    "gunicorn --check-config": [
        str(VENV_BIN / "gunicorn"),
        "--check-config",
        "spine.wsgi:application",
    ],
    "gunicorn master": [
        str(VENV_BIN / "gunicorn"),
        "spine.wsgi:application",
        "--config",
        "python:spine.gunicorn",
        "--bind",
        "127.0.0.1:0",
    ],
    "celery inspect": [str(VENV_BIN / "celery"), "-A", "spine", "inspect", "ping"],
    "celery worker": [str(VENV_BIN / "celery"), "-A", "spine", "worker", "--pool", "solo"],
    "celery beat": [str(VENV_BIN / "celery"), "-A", "spine", "beat"],
}


def run_with(argv: list[str], environ: dict[str, str], cwd: Path, tmp_path: Path) -> Any:
    env = {
        "PATH": f"{VENV_BIN}:/usr/bin:/bin",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'entry.sqlite3'}",
        **environ,
    }
    return subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_every_entry_point_stops_with_one_line(
    entry: str, project_root: Path, tmp_path: Path
) -> None:
    result = run_with(ENTRY_POINTS[entry], {"DEBUG": "maybe"}, project_root, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr == "config error: DEBUG='maybe' is not a boolean (use true or false)\n"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"DATABASE_URL": "mysql://spine:hunter2@db:3306/spine"},
            "DATABASE_URL='mysql://spine:***@db:3306/spine' names an unsupported database",
        ),
        ({"EXECUTION_BACKEND": "celery"}, "EXECUTION_BACKEND=celery needs REDIS_URL"),
        ({"SPINE_HEARTBEAT_SECONDS": "ten"}, "SPINE_HEARTBEAT_SECONDS='ten' is not a whole"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL='localhost:6379' is not a Redis URL"),
        ({"FINRA_API_TIMEOUT": "-1"}, "FINRA_API_TIMEOUT='-1' is not a positive number"),
        ({"PROMETHEUS_MULTIPROC_DIR": "/no/such/dir"}, "PROMETHEUS_MULTIPROC_DIR='/no/such"),
    ],
)
def test_manage_py_names_the_variable(
    environ: dict[str, str], message: str, project_root: Path, tmp_path: Path
) -> None:
    result = run_with(MANAGE_DOCTOR, environ, project_root, tmp_path)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"config error: {message}"), result.stderr
    assert "hunter2" not in result.stderr and result.stdout == ""
