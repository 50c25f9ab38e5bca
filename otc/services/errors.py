"""Errors the OTC services raise; each message names what was wrong."""

from __future__ import annotations


class OtcError(Exception):
    """Base class for OTC data-path errors that should fail an execution cleanly."""


class CaptureNotFound(OtcError, LookupError):
    """No (current) capture matches the requested tier, week and ATS flag."""


class NotNormalized(OtcError):
    """Analytics were requested for a capture that has not been normalized yet."""


class QualityGateFailed(OtcError):
    """The capture's quality grade is F: compute is blocked. ``failures`` says why."""

    def __init__(self, capture_id: int, failures: list[str]) -> None:
        self.capture_id = capture_id
        self.failures = failures
        super().__init__(
            f"quality gate failed for capture {capture_id} (grade F): " + "; ".join(failures)
        )


class CaptureSuperseded(OtcError):
    """A superseded capture was asked to change: it is history, a newer one answers."""


class StaleCapture(OtcError):
    """A capture ingested later is already current, so this one cannot take over."""


class VolumeOutOfRange(OtcError):
    """A capture's totals are larger than the analytics can compute exactly."""
