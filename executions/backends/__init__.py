"""Execution backends: where a queued execution goes to be run (``EXECUTION_BACKEND``)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.utils.module_loading import import_string

from executions.backends.base import ExecutionBackend

BACKENDS = {
    "celery": "executions.backends.celery.CeleryBackend",
    "local": "executions.backends.local.LocalBackend",
    "stub": "executions.backends.stub.StubBackend",
}

_instances: dict[str, ExecutionBackend] = {}
_lock = threading.Lock()


def get_backend(name: str | None = None) -> ExecutionBackend:
    """The backend named ``name`` or by ``settings.EXECUTION_BACKEND`` (one per name)."""
    name = name or settings.EXECUTION_BACKEND
    with _lock:
        backend = _instances.get(name)
        if backend is None:
            try:
                path = BACKENDS[name]
            except KeyError:
                raise ValueError(
                    f"unknown execution backend {name!r}; use one of {', '.join(BACKENDS)}"
                ) from None
            backend = _instances[name] = import_string(path)()
        return backend


@receiver(setting_changed)
def _forget_backends(*, setting: str, **kwargs: object) -> None:
    if setting in ("EXECUTION_BACKEND", "CELERY_BROKER_URL"):
        with _lock:
            _instances.clear()


__all__ = ["BACKENDS", "ExecutionBackend", "get_backend"]
