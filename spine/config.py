"""Read Market Spine's configuration from the environment.

One settings module serves every environment; everything that differs between a
laptop and production arrives through environment variables, parsed here so a bad
value stops start-up with a message that names the variable.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = BASE_DIR / "var" / "spine.sqlite3"
DEV_SECRET_KEY = "spine-development-key-not-for-production"  # noqa: S105
EXECUTION_BACKENDS = ("local", "celery", "stub")
LOG_FORMATS = ("json", "console")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RATE_RE = re.compile(r"^\d+/\d*[smhd]$")


def env_bool(environ: Mapping[str, str], name: str, default: bool) -> bool:
    """Parse a boolean variable; anything but a recognised word is an error."""
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use true/false, 1/0, yes/no).")


def env_int(environ: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    """Parse a whole-number variable with a lower bound."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number.") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}.")
    return value


def env_list(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated list variable."""
    raw = environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_choice(
    environ: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]
) -> str:
    """Parse a variable that must be one of a fixed set of names."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        raise ImproperlyConfigured(f"{name}={raw!r} is not one of: {', '.join(choices)}.")
    return value


def env_rate(environ: Mapping[str, str], name: str, default: str) -> str:
    """Parse a rate string such as ``600/m``, as the rate limiter understands them."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if not _RATE_RE.match(value):
        raise ImproperlyConfigured(
            f"{name}={raw!r} is not a rate such as '600/m' (count/period, period in s, m, h, d)."
        )
    return value


def sqlite_test_database(name: str) -> dict[str, str]:
    """The test database for a SQLite file: another file beside it.

    Django's default for SQLite tests is a shared-cache memory database, where a
    second thread's write (a heartbeat, a timer) fails at once with "database table
    is locked"; on a file, writers wait for each other as they do in production.
    """
    if not name or name == ":memory:" or name.startswith("file:"):
        return {}
    path = Path(name)
    return {"NAME": str(path.with_name(f"{path.stem}-test{path.suffix}"))}


def parse_database_url(environ: Mapping[str, str]) -> dict[str, Any]:
    """Build Django's default database from ``DATABASE_URL`` (SQLite file when unset)."""
    raw = environ.get("DATABASE_URL", "").strip()
    if not raw:
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(DEFAULT_SQLITE_PATH),
            "OPTIONS": {"timeout": 30, "transaction_mode": "IMMEDIATE"},
            "TEST": sqlite_test_database(str(DEFAULT_SQLITE_PATH)),
        }
    try:
        parsed = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except Exception as exc:  # the library raises several types for malformed URLs
        raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from None
    engine = parsed.get("ENGINE", "")
    if engine not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme is not supported ({engine or 'unknown'}); "
            "use postgres://... or sqlite:///path."
        )
    if engine == "django.db.backends.sqlite3":
        parsed["CONN_MAX_AGE"] = 0
        parsed.setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
        parsed.setdefault("TEST", {}).update(sqlite_test_database(parsed.get("NAME", "")))
    elif not parsed.get("NAME"):
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://host:port/NAME).")
    return parsed


def parse_redis_url(environ: Mapping[str, str]) -> str | None:
    """Return ``REDIS_URL`` when set, after checking its scheme."""
    raw = environ.get("REDIS_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        raise ImproperlyConfigured(
            f"REDIS_URL={raw!r} must start with redis://, rediss:// or unix://."
        )
    return raw


def parse_multiproc_dir(environ: Mapping[str, str]) -> Path | None:
    """Return ``PROMETHEUS_MULTIPROC_DIR`` when set, after checking it is usable.

    prometheus_client switches every metric to file-backed values as soon as the
    variable is present (even empty, which would scatter files in the working
    directory), so presence without a writable directory is refused here, before any
    process starts counting into a place the web process cannot read.
    """
    if "prometheus_multiproc_dir" in environ and "PROMETHEUS_MULTIPROC_DIR" not in environ:
        raise ImproperlyConfigured(
            "prometheus_multiproc_dir is the deprecated spelling; set PROMETHEUS_MULTIPROC_DIR."
        )
    if "PROMETHEUS_MULTIPROC_DIR" not in environ:
        return None
    raw = environ["PROMETHEUS_MULTIPROC_DIR"]
    if not raw.strip():
        raise ImproperlyConfigured(
            "PROMETHEUS_MULTIPROC_DIR is set but empty; unset it or name a directory."
        )
    path = Path(raw.strip())
    if not path.is_dir():
        raise ImproperlyConfigured(
            f"PROMETHEUS_MULTIPROC_DIR={raw!r} is not an existing directory."
        )
    if not os.access(path, os.W_OK | os.X_OK):
        raise ImproperlyConfigured(f"PROMETHEUS_MULTIPROC_DIR={raw!r} is not writable.")
    return path


@dataclass(frozen=True)
class SpineConfig:
    """Everything the settings module needs, parsed and validated."""

    debug: bool
    secret_key: str
    allowed_hosts: list[str]
    database: dict[str, Any]
    redis_url: str | None
    execution_backend: str
    log_level: str
    log_format: str
    secure_ssl_redirect: bool
    secure_cookies: bool
    hsts_seconds: int
    trust_forwarded_proto: bool
    public_read: bool
    ratelimit_read: str
    ratelimit_write: str
    ratelimit_enabled: bool
    metrics_allowed_ips: list[str]
    metrics_token: str
    diagnostic_pipelines: bool
    dlq_retention_days: int = 30
    failure_handler: str = "dlq.services.park"
    heartbeat_seconds: int = 10
    reap_after_seconds: int = 60
    sweep_after_seconds: int = 60
    sweep_lost_after_seconds: int = 180
    lock_retry_seconds: int = 10
    time_limit_grace_seconds: int = 30
    prometheus_multiproc_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_config(environ: Mapping[str, str]) -> SpineConfig:
    """Parse the environment into a :class:`SpineConfig` or raise ImproperlyConfigured."""
    debug = env_bool(environ, "DEBUG", True)
    secret_key = environ.get("SECRET_KEY", "").strip() or DEV_SECRET_KEY
    if not debug and secret_key == DEV_SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY must be set to a real secret when DEBUG is off "
            "(the development default is refused)."
        )
    redis_url = parse_redis_url(environ)
    default_backend = "celery" if redis_url else "local"
    backend = env_choice(environ, "EXECUTION_BACKEND", default_backend, EXECUTION_BACKENDS)
    if backend == "celery" and not redis_url:
        raise ImproperlyConfigured("EXECUTION_BACKEND=celery needs REDIS_URL for the broker.")
    log_level = environ.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in logging.getLevelNamesMapping():
        raise ImproperlyConfigured(f"LOG_LEVEL={log_level!r} is not a logging level.")
    secure = not debug
    return SpineConfig(
        debug=debug,
        secret_key=secret_key,
        allowed_hosts=env_list(
            environ, "ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]", "testserver"]
        ),
        database=parse_database_url(environ),
        redis_url=redis_url,
        execution_backend=backend,
        log_level=log_level,
        log_format=env_choice(environ, "LOG_FORMAT", "json", LOG_FORMATS),
        secure_ssl_redirect=env_bool(environ, "SPINE_SECURE_SSL_REDIRECT", secure),
        secure_cookies=env_bool(environ, "SPINE_SECURE_COOKIES", secure),
        hsts_seconds=env_int(environ, "SPINE_HSTS_SECONDS", 31_536_000 if secure else 0),
        trust_forwarded_proto=env_bool(environ, "SPINE_TRUST_X_FORWARDED_PROTO", False),
        public_read=env_bool(environ, "SPINE_PUBLIC_READ", False),
        ratelimit_read=env_rate(environ, "SPINE_RATELIMIT_READ", "600/m"),
        ratelimit_write=env_rate(environ, "SPINE_RATELIMIT_WRITE", "60/m"),
        ratelimit_enabled=env_bool(environ, "SPINE_RATELIMIT_ENABLED", True),
        metrics_allowed_ips=env_list(environ, "SPINE_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"]),
        metrics_token=environ.get("SPINE_METRICS_TOKEN", "").strip(),
        diagnostic_pipelines=env_bool(environ, "SPINE_DIAGNOSTIC_PIPELINES", False),
        failure_handler=environ.get("SPINE_FAILURE_HANDLER", "").strip() or "dlq.services.park",
        heartbeat_seconds=env_int(environ, "SPINE_HEARTBEAT_SECONDS", 10, minimum=1),
        reap_after_seconds=env_int(environ, "SPINE_REAP_AFTER_SECONDS", 60, minimum=2),
        sweep_after_seconds=env_int(environ, "SPINE_SWEEP_AFTER_SECONDS", 60, minimum=1),
        sweep_lost_after_seconds=env_int(environ, "SPINE_SWEEP_LOST_AFTER_SECONDS", 180, minimum=1),
        lock_retry_seconds=env_int(environ, "SPINE_LOCK_RETRY_SECONDS", 10, minimum=1),
        time_limit_grace_seconds=env_int(environ, "SPINE_TIME_LIMIT_GRACE_SECONDS", 30, minimum=1),
        dlq_retention_days=env_int(environ, "SPINE_DLQ_RETENTION_DAYS", 30, minimum=1),
        prometheus_multiproc_dir=parse_multiproc_dir(environ),
    )
