"""The pipeline registry: what can run, with which parameters, where and how long."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from django.conf import settings
from rest_framework import serializers

from spine.text import printable, quote

if TYPE_CHECKING:
    from executions.run_context import RunContext

Handler = Callable[["RunContext"], dict[str, Any] | None]
LockPolicy = Literal["wait", "fail"]
# A lock key is a template over the canonical params ("otc:ingest:{tier}:{week}") or a
# function of them that may return None when a particular run needs no lock.
LockKey = str | Callable[[dict[str, Any]], str | None]
# Requeues after a lost worker that a pipeline safe to rerun from the start declares
# (every otc.* and ops.* pipeline); beyond them the run is a dead letter.
RERUN_SAFE_REQUEUES = 2


class UnknownPipeline(LookupError):
    """No pipeline is registered under the requested name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        super().__init__(
            f"unknown pipeline {quote(name)}; registered pipelines: {', '.join(known) or 'none'}"
        )


class InvalidParams(ValueError):
    """A pipeline's parameters failed validation; ``errors`` maps field to messages
    (any input they echo shortened and escaped, see :func:`spine.text.printable`)."""

    def __init__(self, pipeline: str, errors: dict[str, Any]) -> None:
        self.pipeline = pipeline
        self.errors = _printable_errors(errors)
        detail = "; ".join(
            f"{key}: {' '.join(map(str, msgs))}" for key, msgs in self.errors.items()
        )
        super().__init__(f"invalid params for {pipeline}: {detail}")


def _printable_errors(value: Any) -> Any:
    """Validation messages (and unknown parameter names) with any input they echo
    shortened and its control characters escaped."""
    if isinstance(value, dict):
        return {printable(str(key), 100): _printable_errors(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_printable_errors(item) for item in value]
    return printable(value, 300) if isinstance(value, str) else value


class PipelineParams(serializers.Serializer):
    """Base class for params schemas: unknown keys are an error, not silently dropped."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                allowed = ", ".join(sorted(self.fields)) or "none"
                raise serializers.ValidationError(
                    {key: [f"unknown parameter (allowed: {allowed})"] for key in unknown}
                )
        return super().to_internal_value(data)


class NoParams(PipelineParams):
    """For pipelines that take no parameters."""


@dataclass(frozen=True)
class RetryPolicy:
    """Automatic retries for failed runs: exponential backoff with full jitter."""

    max_retries: int = 0
    backoff_seconds: float = 30.0
    backoff_max_seconds: float = 3600.0

    def delay_for(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        ceiling = min(self.backoff_max_seconds, self.backoff_seconds * 2 ** max(attempt - 1, 0))
        return (rng or random).uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class Pipeline:
    """One registered pipeline."""

    name: str
    handler: Handler
    params: type[serializers.Serializer]
    description: str
    lane: str = "default"
    timeout_seconds: int = 300
    lock_key: LockKey | None = None
    lock_policy: LockPolicy = "wait"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Times the reaper may put a run back in the queue after its worker was lost; then
    # it fails as "worker lost" (dead letter). Only a handler that is safe to run again
    # from the start (idempotent writes) should allow any.
    max_requeues: int = 0
    # A Django permission needed, besides executions.add_execution, to start this
    # pipeline by hand (the API's submission, the admin's Run pipeline page).
    launch_permission: str | None = None
    # A param naming who asked for the run: starting by hand fills it with the signed-in
    # user's name, whatever the request said.
    actor_param: str | None = None

    def may_launch(self, user: Any) -> bool:
        """Whether ``user`` (already allowed to start executions) may start this one."""
        return self.launch_permission is None or user.has_perm(self.launch_permission)

    def launched_by(self, user: Any, params: dict[str, Any]) -> dict[str, Any]:
        """``params`` as ``user`` starts them by hand (their name in ``actor_param``)."""
        if self.actor_param is None:
            return params
        return {**params, self.actor_param: user.get_username()}

    def validate(self, raw: dict[str, Any] | None) -> dict[str, Any]:
        """Validate raw params; return their canonical JSON-safe form."""
        serializer = self.params(data=raw if raw is not None else {})
        if not serializer.is_valid():
            raise InvalidParams(self.name, dict(serializer.errors))
        return dict(serializer.data)

    def load(self, stored: dict[str, Any]) -> dict[str, Any]:
        """Turn stored canonical params back into Python values for the handler."""
        serializer = self.params(data=stored)
        if not serializer.is_valid():
            raise InvalidParams(self.name, dict(serializer.errors))
        return dict(serializer.validated_data)

    def lock_key_for(self, params: dict[str, Any]) -> str | None:
        """The concurrency key for these (canonical) params, if the pipeline has one."""
        if self.lock_key is None:
            return None
        if callable(self.lock_key):
            return self.lock_key(params) or None
        return self.lock_key.format(**params) or None

    def params_schema(self) -> dict[str, Any]:
        """A plain description of the params: name → type, required, default, help."""
        schema: dict[str, Any] = {}
        for name, fld in self.params().fields.items():
            entry: dict[str, Any] = {
                "type": type(fld).__name__.removesuffix("Field").lower(),
                "required": fld.required,
            }
            if fld.default is not serializers.empty:
                entry["default"] = fld.default() if callable(fld.default) else fld.default
            if getattr(fld, "choices", None):
                entry["choices"] = list(fld.choices)
            if fld.help_text:
                entry["help"] = str(fld.help_text)
            schema[name] = entry
        return schema


class PipelineRegistry:
    """Name → :class:`Pipeline`; registration is idempotent per name and handler."""

    def __init__(self) -> None:
        self._pipelines: dict[str, Pipeline] = {}

    def register(self, pipeline: Pipeline) -> Pipeline:
        lanes = getattr(settings, "EXECUTION_LANES", ("default",))
        if pipeline.lane not in lanes:
            raise ValueError(f"pipeline {pipeline.name}: lane {pipeline.lane!r} not in {lanes}")
        if pipeline.timeout_seconds <= 0:
            raise ValueError(f"pipeline {pipeline.name}: timeout_seconds must be positive")
        if pipeline.max_requeues < 0:
            raise ValueError(f"pipeline {pipeline.name}: max_requeues must not be negative")
        existing = self._pipelines.get(pipeline.name)
        if existing is not None and existing.handler is not pipeline.handler:
            raise ValueError(f"pipeline {pipeline.name!r} is already registered")
        self._pipelines[pipeline.name] = pipeline
        return pipeline

    def unregister(self, name: str) -> None:
        self._pipelines.pop(name, None)

    def get(self, name: str) -> Pipeline:
        try:
            return self._pipelines[name]
        except KeyError:
            raise UnknownPipeline(name, sorted(self._pipelines)) from None

    def __contains__(self, name: object) -> bool:
        return name in self._pipelines

    def __iter__(self) -> Iterator[Pipeline]:
        return iter(sorted(self._pipelines.values(), key=lambda p: p.name))

    def names(self) -> list[str]:
        return sorted(self._pipelines)


registry = PipelineRegistry()


def pipeline(
    name: str,
    *,
    params: type[serializers.Serializer] = NoParams,
    description: str | None = None,
    lane: str = "default",
    timeout_seconds: int = 300,
    lock_key: LockKey | None = None,
    lock_policy: LockPolicy = "wait",
    retry: RetryPolicy | None = None,
    max_requeues: int = 0,
    launch_permission: str | None = None,
    actor_param: str | None = None,
) -> Callable[[Handler], Handler]:
    """Register the decorated function as the handler of pipeline ``name``."""

    def decorate(handler: Handler) -> Handler:
        registry.register(
            Pipeline(
                name=name,
                handler=handler,
                params=params,
                description=description or (handler.__doc__ or "").strip().split("\n")[0],
                lane=lane,
                timeout_seconds=timeout_seconds,
                lock_key=lock_key,
                lock_policy=lock_policy,
                retry=retry or RetryPolicy(),
                max_requeues=max_requeues,
                launch_permission=launch_permission,
                actor_param=actor_param,
            )
        )
        return handler

    return decorate
