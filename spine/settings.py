"""Market Spine settings: one module for every environment, driven by variables.

See :mod:`spine.config` for the variables and their parsing. With nothing set,
Market Spine runs on a SQLite file with the local in-process execution backend.
"""

from __future__ import annotations

import os

from spine.config import BASE_DIR, load_config
from spine.logging import (
    command_level,
    command_logging_config,
    command_verbosity,
    logging_config,
)

CONFIG = load_config(os.environ)

DEBUG = CONFIG.debug
SECRET_KEY = CONFIG.secret_key
ALLOWED_HOSTS = CONFIG.allowed_hosts

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_prometheus",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_ratelimit",
    "django_celery_results",
    "django_celery_beat",
    "spine",
    "executions",
    "otc",
    "dlq",
    "ops",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "spine.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "spine.middleware.StaticFilesMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "spine.urls"
WSGI_APPLICATION = "spine.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {"default": CONFIG.database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = CONFIG.redis_url
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "spine",
            # Bounded waits: a hung Redis must not hang API requests (rate limits fail open).
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    # The embedded default is a single process: a local-memory rate-limit counter is
    # exact there, so the library's multi-process warning does not apply.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]
if REDIS_URL:
    # Django's own RedisCache is not on django-ratelimit's list, but it is shared and
    # increments atomically (Redis INCR), which is all the rate limiter needs.
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.W001"]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"
# gunicorn serves the admin and API-docs assets itself (collected at image build).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
    # The raw archive: every capture's original bytes, compressed, named by checksum.
    # On S3-compatible storage with SPINE_ARCHIVE_URL=s3://bucket/prefix (docs/otc.md).
    "archive": (
        {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": CONFIG.archive_s3.storage_options(),
        }
        if CONFIG.archive_s3
        else {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(CONFIG.archive_dir)},
        }
    ),
}

# Servers and workers log JSON (LOG_LEVEL, LOG_FORMAT); a management command logs
# readable lines on stderr at SPINE_COMMAND_LOG_LEVEL, lowered by -v 2 / -v 3.
_verbosity = command_verbosity()
if _verbosity is None:
    LOGGING = logging_config(CONFIG.log_level, CONFIG.log_format)
else:
    LOGGING = command_logging_config(
        command_level(CONFIG.command_log_level, _verbosity), CONFIG.command_log_format
    )

# Security: HTTPS-related settings are on whenever DEBUG is off; each can be switched
# off for a deployment behind a TLS-terminating proxy.
SECURE_SSL_REDIRECT = CONFIG.secure_ssl_redirect
SESSION_COOKIE_SECURE = CONFIG.secure_cookies
CSRF_COOKIE_SECURE = CONFIG.secure_cookies
SECURE_HSTS_SECONDS = CONFIG.hsts_seconds
SECURE_HSTS_INCLUDE_SUBDOMAINS = CONFIG.hsts_seconds > 0
SECURE_HSTS_PRELOAD = CONFIG.hsts_seconds > 0
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if CONFIG.trust_forwarded_proto:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REDIRECT_EXEMPT = [r"^health/", r"^metrics$"]

# Executions
EXECUTION_BACKEND = CONFIG.execution_backend
SPINE_DIAGNOSTIC_PIPELINES = CONFIG.diagnostic_pipelines
# Resolved dead letters older than this are purged by the retention task.
SPINE_DLQ_RETENTION_DAYS = CONFIG.dlq_retention_days
SPINE_REPLAY_RATE = CONFIG.replay_rate
EXECUTION_LANES = ("default", "backfill", "maintenance")
# The longest pipeline time limit; the broker's redelivery window must exceed it.
SPINE_MAX_PIPELINE_TIMEOUT = 6 * 3600
# Execution runtime: where failures are handed (the dead-letter queue), how often a
# running execution beats, when a silent one is reaped, when a pending one is swept,
# how long a lock wait lasts, and the grace between a pipeline's soft and hard limit.
SPINE_FAILURE_HANDLER = CONFIG.failure_handler
SPINE_HEARTBEAT_SECONDS = CONFIG.heartbeat_seconds
SPINE_REAP_AFTER_SECONDS = CONFIG.reap_after_seconds
SPINE_SWEEP_AFTER_SECONDS = CONFIG.sweep_after_seconds
# A queued execution not started this long after it was due has presumably lost its
# message (a broker restarted empty); the sweeper publishes it again (see
# executions.recovery).
SPINE_SWEEP_LOST_AFTER_SECONDS = CONFIG.sweep_lost_after_seconds
SPINE_LOCK_RETRY_SECONDS = CONFIG.lock_retry_seconds
SPINE_TIME_LIMIT_GRACE_SECONDS = CONFIG.time_limit_grace_seconds
# The broker redelivers an unacknowledged message after this window at the latest, so
# the sweeper's republishing of a queued execution never waits longer.
SPINE_SWEEP_QUEUED_AFTER_SECONDS = SPINE_MAX_PIPELINE_TIMEOUT + 3600 + 600

# Celery
CELERY_BROKER_URL = REDIS_URL or "memory://"
# kombu's Redis transport with a guard that keeps a worker alive across a broker
# outage (see spine.broker).
CELERY_BROKER_TRANSPORT = "spine.broker:Transport" if REDIS_URL else None
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = "UTC"
CELERY_ENABLE_UTC = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": SPINE_MAX_PIPELINE_TIMEOUT + 3600,
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    "max_retries": 1,
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Celery's Django fixup closes every database connection around every task unless this
# is set (it then recycles them every 2 x N tasks); spine.celery closes them the way
# Django does instead, honouring CONN_MAX_AGE and the health checks.
CELERY_DB_REUSE_MAX = 1000

# API clients
SPINE_PUBLIC_READ = CONFIG.public_read
SPINE_RATELIMIT_ENABLED = CONFIG.ratelimit_enabled
SPINE_RATELIMIT_READ = CONFIG.ratelimit_read
SPINE_RATELIMIT_WRITE = CONFIG.ratelimit_write
SPINE_METRICS_ALLOWED_IPS = CONFIG.metrics_allowed_ips
SPINE_METRICS_TOKEN = CONFIG.metrics_token
# Where every process (gunicorn workers, Celery worker children) writes its metrics
# when several serve one stack; /metrics sums the files (spine.prometheus). None: one
# process, metrics in memory. Tests point a scrape at another directory through it.
PROMETHEUS_MULTIPROC_DIR = (
    str(CONFIG.prometheus_multiproc_dir) if CONFIG.prometheus_multiproc_dir else None
)
# FINRA files: pipelines read them from the inbox only (paths relative to it); an
# upload larger than the limit is refused. Uploads past 2.5 MB stream to a temporary
# file, never into memory, and SizeLimitUploadHandler stops counting at the limit.
SPINE_INBOX_DIR = CONFIG.inbox_dir
SPINE_UPLOAD_MAX_BYTES = CONFIG.upload_max_bytes
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
FILE_UPLOAD_HANDLERS = [
    "otc.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Rate limits fail open when the counter store (Redis) is down: see spine.api.ratelimit.
SPINE_RATELIMIT_FAIL_OPEN = True
RATELIMIT_FAIL_OPEN = True
RATELIMIT_CACHE_PREFIX = "rl:"
CSRF_FAILURE_VIEW = "spine.api.errors.csrf_failure"

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Token first: its WWW-Authenticate header makes missing credentials a 401.
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["spine.api.permissions.SpineAPIPermission"],
    "DEFAULT_PAGINATION_CLASS": "spine.api.pagination.StandardPagination",
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "spine.api.filters.StrictOrderingFilter",
    ],
    # Request bodies are JSON (pipeline params are nested objects forms cannot carry).
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "spine.api.schema.SpineAutoSchema",
    "EXCEPTION_HANDLER": "spine.api.errors.exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Market Spine API",
    "DESCRIPTION": (
        "Executions, dead letters and FINRA OTC weekly analytics. Errors use one body: "
        '{"error": {"code", "message", "details"}}. See docs/api.md.'
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": r"/api/v[0-9]+",
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Tier codes: as stored (T1, T2, OTC) and as read by parameters (OTCE accepted too).
    "ENUM_NAME_OVERRIDES": {
        "TierEnum": "otc.models.Tier",
        "TierCodeEnum": ["T1", "T2", "OTC"],
        "TierAcceptedEnum": ["T1", "T2", "OTC", "OTCE"],
    },
}
