"""Settings parsing: each variable, each bad value's error names the variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from spine.config import DEFAULT_SQLITE_PATH, DEV_SECRET_KEY, load_config

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
    ],
)
def test_bad_values_name_the_variable(environ: dict[str, str], names: str) -> None:
    with pytest.raises(ImproperlyConfigured) as excinfo:
        load_config(environ)
    assert names in str(excinfo.value)


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
