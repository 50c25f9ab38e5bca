"""Shared pieces of the DLQ tests (imported by the conftest and by test modules)."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import Permission, User
from rest_framework import serializers

from executions.registry import PipelineParams, RetryPolicy

FLAKY = "dlq_test.flaky"
FLAKY_POLICY = RetryPolicy(max_retries=2, backoff_seconds=10, backoff_max_seconds=15)
# Flip to False to let the flaky pipeline succeed (a fix deployed between retries).
FLAKY_STATE = {"fail": True}


class FlakyParams(PipelineParams):
    week = serializers.DateField(required=False)
    tier = serializers.ChoiceField(choices=["T1", "T2", "OTC"], default="T1")


def flaky(ctx: Any) -> dict[str, Any]:
    """Fail while FLAKY_STATE says so, with a recognisable error."""
    if FLAKY_STATE["fail"]:
        raise ValueError(f"flaky upstream refused tier {ctx.params['tier']}")
    return {"ok": True}


def make_user(username: str, *perms: str, staff: bool = True) -> User:
    user = User.objects.create_user(username=username, password="not-used-pw-123", is_staff=staff)
    for perm in perms:
        app_label, codename = perm.split(".")
        user.user_permissions.add(
            Permission.objects.get(content_type__app_label=app_label, codename=codename)
        )
    return User.objects.get(pk=user.pk)  # fresh: no stale permission cache
