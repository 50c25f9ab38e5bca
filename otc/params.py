"""Validated fields and params of the OTC pipelines, shared with the API's query serializers."""

from __future__ import annotations

from datetime import date
from typing import Any

from rest_framework import serializers

from executions.registry import PipelineParams
from otc import inbox
from otc.parser import parse_tier
from otc.weeks import reporting_week, week_start

__all__ = [
    "ATS_REQUIRED",
    "CaptureStepParams",
    "InboxPathField",
    "IngestFileParams",
    "TierField",
    "WeekField",
    "WeekParams",
    "ats_field",
    "file_ats_field",
    "tier_field",
]

#: The error when a file's summary is not given: the file cannot say it itself.
ATS_REQUIRED = (
    "say which FINRA summary the file is: true for the ATS summary, false for the "
    "non-ATS (OTC) summary (nothing in a file's columns says which)"
)


class TierField(serializers.CharField):
    """T1, T2 or OTC; FINRA's API spelling OTCE is accepted and stored as OTC."""

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return parse_tier(text)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class WeekField(serializers.DateField):
    """Any date (YYYY-MM-DD) in the reporting week; stored as the week's Monday.

    Only weeks FINRA can have data for: from 2014 (:data:`otc.weeks.FIRST_WEEK`)
    through the current week. A read filter passes ``bounded=False``: a week outside
    that range is simply one without data.
    """

    def __init__(self, *, bounded: bool = True, **kwargs: Any) -> None:
        self.bounded = bounded
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> date:
        day = super().to_internal_value(value)
        if not self.bounded:
            return week_start(day)
        try:
            return reporting_week(day)
        except ValueError as exc:
            raise serializers.ValidationError(str(exc)) from None


class InboxPathField(serializers.CharField):
    """A path relative to the inbox (``SPINE_INBOX_DIR``); see :mod:`otc.inbox`."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 1000)
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        text = super().to_internal_value(data)
        try:
            return inbox.check_relative(text)
        except inbox.InboxPathError as exc:
            raise serializers.ValidationError(str(exc)) from None


def tier_field(help_text: str = "T1, T2 or OTC (OTCE accepted).") -> TierField:
    return TierField(help_text=help_text)


def ats_field() -> serializers.BooleanField:
    return serializers.BooleanField(
        default=False, help_text="True for ATS volume; false (default) for non-ATS OTC volume."
    )


def file_ats_field() -> serializers.BooleanField:
    """``ats`` of a params naming files: required, no default (see :data:`ATS_REQUIRED`)."""
    return serializers.BooleanField(
        help_text="Required: true if the file is FINRA's ATS summary, false if it is the "
        "non-ATS (OTC) summary. Nothing in a file's columns says which.",
        error_messages={"required": ATS_REQUIRED, "null": ATS_REQUIRED},
    )


class WeekParams(PipelineParams):
    """One capture key: tier, reporting week and ATS flag."""

    tier = tier_field()
    week = WeekField(
        help_text="Any date in the reporting week, 2014-01-06 through the current week; "
        "stored as its Monday."
    )
    ats = ats_field()


class CaptureStepParams(WeekParams):
    """A capture key, and optionally which of the week's captures to work on."""

    capture = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=2**63 - 1,
        help_text="Capture id (of this tier, week and ATS flag). Default: the week's "
        "newest capture that is not superseded (a staged, failed or rejected one if it "
        "is newer than the current one).",
    )


class IngestFileParams(WeekParams):
    """A file of the inbox and its capture key; which summary it is must be said."""

    ats = file_ats_field()
    path = InboxPathField(
        help_text=(
            "The FINRA download file, relative to the inbox (SPINE_INBOX_DIR); "
            "absolute paths and '..' are refused."
        )
    )
