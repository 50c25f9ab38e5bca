"""How the API answers the executions app's domain errors (registered from ``ready()``)."""

from __future__ import annotations

from rest_framework import exceptions

from executions.registry import InvalidParams, UnknownPipeline
from spine.api.errors import SpineAPIError, plain, register_exception_mapper


def unknown_pipeline(exc: Exception) -> exceptions.APIException:
    assert isinstance(exc, UnknownPipeline)
    return SpineAPIError(
        str(exc),
        code="unknown_pipeline",
        details={"pipeline": [str(exc)], "known_pipelines": exc.known},
    )


def invalid_params(exc: Exception) -> exceptions.APIException:
    assert isinstance(exc, InvalidParams)
    return SpineAPIError(str(exc), code="invalid_params", details={"params": plain(exc.errors)})


def register() -> None:
    """Map the registry's errors to 400s with their codes."""
    register_exception_mapper(UnknownPipeline, unknown_pipeline)
    register_exception_mapper(InvalidParams, invalid_params)
