"""Read Market Spine's configuration from the environment.

One settings module serves every environment; everything that differs between a
laptop and production arrives through environment variables, parsed here so a bad
value stops start-up with a message that names the variable.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
DEFAULT_SQLITE_PATH = BASE_DIR / "var" / "spine.sqlite3"
DEFAULT_INBOX_DIR = BASE_DIR / "var" / "inbox"
DEFAULT_ARCHIVE_DIR = BASE_DIR / "var" / "archive"
DEFAULT_UPLOAD_MAX_BYTES = 256 * 1024 * 1024
DEV_SECRET_KEY = "spine-development-key-not-for-production"  # noqa: S105
EXECUTION_BACKENDS = ("local", "celery", "stub")
LOG_FORMATS = ("json", "console")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
#: The exit status of every entry point (manage.py, gunicorn, celery) on a bad variable.
EXIT_CONFIG_ERROR = 2
#: At most this many characters of a bad value are echoed back.
ECHO_LIMIT = 200
#: Whole-number variables are bounded so that no later arithmetic overflows.
MAX_INT = 2_147_483_647
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}
_RATE_RE = re.compile(r"^\d+/\d*[smhd]$")
_URL_PASSWORD_RE = re.compile(r"(//[^/@:]*:)[^/@]*@")
_DOTTED_PATH_RE = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)+")
T = TypeVar("T")


class ConfigError(ImproperlyConfigured, ValueError):
    """A variable with a value Market Spine cannot use.

    ``str(exc)`` is one line that names the variable, echoes its value (bounded, with
    control characters escaped, passwords in URLs masked) and says what is allowed.
    """

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        super().__init__(message)


def shown(value: str, limit: int = ECHO_LIMIT) -> str:
    """``value`` quoted for an error message: control characters escaped, at most
    ``limit`` characters of it, and how long it was when cut."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value):,} characters)"


def masked_url(url: str) -> str:
    """``url`` with the password of its user part replaced by ``***``."""
    return _URL_PASSWORD_RE.sub(r"\1***@", url)


def refuse(name: str, raw: str, problem: str) -> NoReturn:
    """Raise the :class:`ConfigError` for ``name=raw``: ``problem`` says what is wrong
    and what is allowed."""
    raise ConfigError(name, f"{name}={shown(raw)} {problem}")


def exit_on_config_error(load: Callable[[], T]) -> T:
    """Run ``load``; on a :class:`ConfigError`, print ``config error: <message>`` as the
    only line on stderr and exit with :data:`EXIT_CONFIG_ERROR`. Entry points wrap their
    settings loading in this, so a bad variable never reaches a traceback."""
    try:
        return load()
    except ConfigError as exc:
        sys.stderr.write(f"config error: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(EXIT_CONFIG_ERROR) from None


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
    refuse(name, raw, "is not a boolean (use true or false)")


def env_int(
    environ: Mapping[str, str],
    name: str,
    default: int,
    *,
    minimum: int = 0,
    maximum: int = MAX_INT,
) -> int:
    """Parse a whole-number variable between ``minimum`` and ``maximum``."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    text = raw.strip()
    allowed = f"(use a whole number from {minimum} to {maximum})"
    if not re.fullmatch(r"[+-]?[0-9]+", text):
        refuse(name, raw, f"is not a whole number {allowed}")
    value = int(text) if len(text) <= 20 else maximum + 1
    if not minimum <= value <= maximum:
        refuse(name, raw, f"is out of range {allowed}")
    return value


def env_float(environ: Mapping[str, str], name: str, default: float) -> float:
    """Parse a positive, finite number variable (seconds, rates)."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        refuse(name, raw, "is not a positive number (use e.g. 2.5)")
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
    """Parse a variable that must be one of a fixed set of names (any case)."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().lower()
    if value not in choices:
        refuse(name, raw, f"is not one of: {', '.join(choices)}")
    return value


def env_rate(environ: Mapping[str, str], name: str, default: str) -> str:
    """Parse a rate string such as ``600/m``, as the rate limiter understands them."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    if not _RATE_RE.match(value):
        refuse(name, raw, "is not a rate (use count/period, period s, m, h or d: e.g. 600/m)")
    return value


def env_http_url(environ: Mapping[str, str], name: str, default: str) -> str:
    """Parse an ``http://`` or ``https://`` URL variable."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip()
    try:
        parts = urlsplit(value)
    except ValueError:
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.hostname:
        refuse(name, masked_url(raw), "is not a URL (use http://host or https://host)")
    return value


def env_networks(environ: Mapping[str, str], name: str, default: list[str]) -> list[str]:
    """Parse a comma-separated list of IP addresses or CIDR networks."""
    entries = env_list(environ, name, default)
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            refuse(name, environ.get(name, ""), f"lists {shown(entry)}, not an address or CIDR")
    return entries


def env_log_level(environ: Mapping[str, str], name: str, default: str) -> str:
    """Parse a logging level name (any case)."""
    raw = environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    value = raw.strip().upper()
    if value == "WARN":
        value = "WARNING"
    if value not in LOG_LEVELS:
        refuse(name, raw, f"is not a logging level (use {', '.join(LOG_LEVELS)})")
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


_DATABASE_FORMS = "use postgres://user:password@host:5432/name or sqlite:///path"


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
    echoed = masked_url(raw)
    scheme = raw.partition("://")[0] if "://" in raw else ""
    try:
        parsed = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except Exception:  # the library raises several types for malformed URLs
        if scheme and scheme.lower() not in ("postgres", "postgresql", "pgsql", "sqlite"):
            refuse("DATABASE_URL", echoed, f"names an unsupported database ({_DATABASE_FORMS})")
        refuse("DATABASE_URL", echoed, f"is not a database URL ({_DATABASE_FORMS})")
    engine = parsed.get("ENGINE", "")
    if engine not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        refuse("DATABASE_URL", echoed, f"names an unsupported database ({_DATABASE_FORMS})")
    if engine == "django.db.backends.sqlite3":
        parsed["CONN_MAX_AGE"] = 0
        parsed.setdefault("OPTIONS", {}).update({"timeout": 30, "transaction_mode": "IMMEDIATE"})
        parsed.setdefault("TEST", {}).update(sqlite_test_database(parsed.get("NAME", "")))
    elif not parsed.get("NAME"):
        refuse("DATABASE_URL", echoed, "names no database (use postgres://host:5432/NAME)")
    return parsed


def parse_redis_url(environ: Mapping[str, str]) -> str | None:
    """Return ``REDIS_URL`` when set, after checking its scheme."""
    raw = environ.get("REDIS_URL", "").strip()
    if not raw:
        return None
    if not raw.startswith(("redis://", "rediss://", "unix://")):
        refuse(
            "REDIS_URL",
            masked_url(raw),
            "is not a Redis URL (use redis://host:6379/0, rediss://... or unix://...)",
        )
    return raw


def parse_multiproc_dir(environ: Mapping[str, str]) -> Path | None:
    """Return ``PROMETHEUS_MULTIPROC_DIR`` when set, after checking it is usable.

    prometheus_client switches every metric to file-backed values as soon as the
    variable is present (even empty, which would scatter files in the working
    directory), so presence without a writable directory is refused here, before any
    process starts counting into a place the web process cannot read.
    """
    name = "PROMETHEUS_MULTIPROC_DIR"
    if "prometheus_multiproc_dir" in environ and name not in environ:
        raise ConfigError(
            "prometheus_multiproc_dir",
            f"prometheus_multiproc_dir is the deprecated spelling (set {name} instead)",
        )
    if name not in environ:
        return None
    raw = environ[name]
    if not raw.strip():
        refuse(name, raw, "is set but empty (unset it or name a directory)")
    path = Path(raw.strip())
    if not path.is_dir():
        refuse(name, raw, "is not an existing directory (create it, or unset the variable)")
    if not os.access(path, os.W_OK | os.X_OK):
        refuse(name, raw, "is not writable (every web and worker process writes there)")
    return path


def parse_project_dir(environ: Mapping[str, str], name: str, default: Path) -> Path:
    """Directory variable ``name`` as an absolute path (a relative one is under the
    project); ``default`` when unset."""
    raw = environ.get(name, "")
    if "\x00" in raw:
        refuse(name, raw, "contains a NUL byte")
    if not raw.strip():
        return default
    path = Path(raw.strip()).expanduser()
    path = path if path.is_absolute() else BASE_DIR / path
    if path.exists() and not path.is_dir():
        refuse(name, raw, "exists and is not a directory")
    return path


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX_RE = re.compile(r"[A-Za-z0-9!_.*'()/-]*")
_REGION_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_ARCHIVE_URL_FORM = "use s3://bucket or s3://bucket/prefix"


@dataclass(frozen=True)
class ArchiveS3:
    """The raw archive on S3-compatible storage (``SPINE_ARCHIVE_URL=s3://...``)."""

    bucket: str
    prefix: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def storage_options(self) -> dict[str, Any]:
        """``STORAGES["archive"]["OPTIONS"]`` for django-storages' S3Storage."""
        options: dict[str, Any] = {
            "bucket_name": self.bucket,
            "location": self.prefix,
            "file_overwrite": True,
            "default_acl": None,
            "querystring_auth": False,
        }
        if self.endpoint_url:
            options["endpoint_url"] = self.endpoint_url
            # MinIO, Ceph and local servers answer path-style requests out of the box.
            options["addressing_style"] = "path"
        if self.region:
            options["region_name"] = self.region
        if self.access_key:
            options["access_key"] = self.access_key
            options["secret_key"] = self.secret_key
        return options


def parse_archive_s3(environ: Mapping[str, str]) -> ArchiveS3 | None:
    """``SPINE_ARCHIVE_URL`` (with ``SPINE_ARCHIVE_ENDPOINT_URL`` and the AWS_*
    credentials) when set; ``None`` keeps the archive on the filesystem. Secrets are
    checked for presence only and never echoed."""
    raw = environ.get("SPINE_ARCHIVE_URL", "").strip()
    endpoint = env_http_url(environ, "SPINE_ARCHIVE_ENDPOINT_URL", "") or None
    if not raw:
        if endpoint:
            raise ConfigError(
                "SPINE_ARCHIVE_ENDPOINT_URL",
                "SPINE_ARCHIVE_ENDPOINT_URL is set but SPINE_ARCHIVE_URL is not "
                f"({_ARCHIVE_URL_FORM})",
            )
        return None
    name = "SPINE_ARCHIVE_URL"
    try:
        parts = urlsplit(raw)
    except ValueError:
        refuse(name, masked_url(raw), f"is not an archive URL ({_ARCHIVE_URL_FORM})")
    if parts.scheme.lower() != "s3":
        refuse(name, masked_url(raw), f"is not an s3:// URL ({_ARCHIVE_URL_FORM})")
    if "@" in parts.netloc or parts.query or parts.fragment:
        refuse(
            name,
            masked_url(raw),
            "carries credentials, a query or a fragment (use s3://bucket/prefix; "
            "credentials go in AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)",
        )
    bucket = parts.netloc
    if not _BUCKET_RE.fullmatch(bucket) or ".." in bucket:
        refuse(
            name,
            raw,
            "names no valid bucket (3 to 63 lower-case letters, digits, dots and hyphens)",
        )
    prefix = parts.path.strip("/")
    if not _PREFIX_RE.fullmatch(prefix) or "//" in prefix:
        refuse(name, raw, "has a prefix with characters S3 keys should not hold")
    key_id = environ.get("AWS_ACCESS_KEY_ID", "").strip() or None
    secret = environ.get("AWS_SECRET_ACCESS_KEY", "").strip() or None
    if (key_id is None) != (secret is None):
        missing = "AWS_SECRET_ACCESS_KEY" if secret is None else "AWS_ACCESS_KEY_ID"
        present = "AWS_ACCESS_KEY_ID" if secret is None else "AWS_SECRET_ACCESS_KEY"
        raise ConfigError(
            missing, f"{present} is set but {missing} is not (set both, or neither for roles)"
        )
    region = environ.get("AWS_DEFAULT_REGION", "").strip() or None
    if region is not None and not _REGION_RE.fullmatch(region):
        refuse("AWS_DEFAULT_REGION", region, "is not a region name (use e.g. us-east-1)")
    return ArchiveS3(bucket, prefix, endpoint, region, key_id, secret)


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
    command_log_level: str
    command_log_format: str
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
    replay_rate: int = 60
    failure_handler: str = "dlq.services.park"
    heartbeat_seconds: int = 10
    reap_after_seconds: int = 60
    sweep_after_seconds: int = 60
    sweep_lost_after_seconds: int = 180
    lock_retry_seconds: int = 10
    time_limit_grace_seconds: int = 30
    prometheus_multiproc_dir: Path | None = None
    inbox_dir: Path = DEFAULT_INBOX_DIR
    archive_dir: Path = DEFAULT_ARCHIVE_DIR
    archive_s3: ArchiveS3 | None = None
    upload_max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
    extra: dict[str, Any] = field(default_factory=dict)


def load_config(environ: Mapping[str, str]) -> SpineConfig:
    """Parse the environment into a :class:`SpineConfig` or raise :class:`ConfigError`."""
    debug = env_bool(environ, "DEBUG", True)
    secret_key = environ.get("SECRET_KEY", "").strip() or DEV_SECRET_KEY
    if not debug and secret_key == DEV_SECRET_KEY:
        raise ConfigError(
            "SECRET_KEY",
            "SECRET_KEY must be set to a real secret when DEBUG is off "
            "(the development default is refused)",
        )
    redis_url = parse_redis_url(environ)
    default_backend = "celery" if redis_url else "local"
    backend = env_choice(environ, "EXECUTION_BACKEND", default_backend, EXECUTION_BACKENDS)
    if backend == "celery" and not redis_url:
        raise ConfigError(
            "EXECUTION_BACKEND",
            "EXECUTION_BACKEND=celery needs REDIS_URL for the broker "
            "(set REDIS_URL=redis://host:6379/0, or use EXECUTION_BACKEND=local)",
        )
    failure_handler = environ.get("SPINE_FAILURE_HANDLER", "").strip() or "dlq.services.park"
    if not _DOTTED_PATH_RE.fullmatch(failure_handler):
        refuse(
            "SPINE_FAILURE_HANDLER",
            environ["SPINE_FAILURE_HANDLER"],
            "is not a dotted path to a callable (use e.g. dlq.services.park)",
        )
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
        log_level=env_log_level(environ, "LOG_LEVEL", "INFO"),
        log_format=env_choice(environ, "LOG_FORMAT", "json", LOG_FORMATS),
        command_log_level=env_log_level(environ, "SPINE_COMMAND_LOG_LEVEL", "WARNING"),
        command_log_format=env_choice(environ, "SPINE_COMMAND_LOG_FORMAT", "console", LOG_FORMATS),
        secure_ssl_redirect=env_bool(environ, "SPINE_SECURE_SSL_REDIRECT", secure),
        secure_cookies=env_bool(environ, "SPINE_SECURE_COOKIES", secure),
        hsts_seconds=env_int(environ, "SPINE_HSTS_SECONDS", 31_536_000 if secure else 0),
        trust_forwarded_proto=env_bool(environ, "SPINE_TRUST_X_FORWARDED_PROTO", False),
        public_read=env_bool(environ, "SPINE_PUBLIC_READ", False),
        ratelimit_read=env_rate(environ, "SPINE_RATELIMIT_READ", "600/m"),
        ratelimit_write=env_rate(environ, "SPINE_RATELIMIT_WRITE", "60/m"),
        ratelimit_enabled=env_bool(environ, "SPINE_RATELIMIT_ENABLED", True),
        metrics_allowed_ips=env_networks(
            environ, "SPINE_METRICS_ALLOWED_IPS", ["127.0.0.1", "::1"]
        ),
        metrics_token=environ.get("SPINE_METRICS_TOKEN", "").strip(),
        diagnostic_pipelines=env_bool(environ, "SPINE_DIAGNOSTIC_PIPELINES", False),
        failure_handler=failure_handler,
        heartbeat_seconds=env_int(environ, "SPINE_HEARTBEAT_SECONDS", 10, minimum=1),
        reap_after_seconds=env_int(environ, "SPINE_REAP_AFTER_SECONDS", 60, minimum=2),
        sweep_after_seconds=env_int(environ, "SPINE_SWEEP_AFTER_SECONDS", 60, minimum=1),
        sweep_lost_after_seconds=env_int(environ, "SPINE_SWEEP_LOST_AFTER_SECONDS", 180, minimum=1),
        lock_retry_seconds=env_int(environ, "SPINE_LOCK_RETRY_SECONDS", 10, minimum=1),
        time_limit_grace_seconds=env_int(environ, "SPINE_TIME_LIMIT_GRACE_SECONDS", 30, minimum=1),
        dlq_retention_days=env_int(environ, "SPINE_DLQ_RETENTION_DAYS", 30, minimum=1),
        replay_rate=env_int(environ, "SPINE_REPLAY_RATE", 60, minimum=1, maximum=100_000),
        prometheus_multiproc_dir=parse_multiproc_dir(environ),
        inbox_dir=parse_project_dir(environ, "SPINE_INBOX_DIR", DEFAULT_INBOX_DIR),
        archive_dir=parse_project_dir(environ, "SPINE_ARCHIVE_DIR", DEFAULT_ARCHIVE_DIR),
        archive_s3=parse_archive_s3(environ),
        upload_max_bytes=env_int(
            environ, "SPINE_UPLOAD_MAX_BYTES", DEFAULT_UPLOAD_MAX_BYTES, minimum=1, maximum=2**40
        ),
    )
