"""Who may do what: reads need a signed-in client (unless public read is on), writes
need the model permission the view declares for the action (docs/api.md).
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.request import Request


def required_permissions(request: Request, view: Any) -> tuple[str, ...] | None:
    """The permissions the view declares for this request's action, if any."""
    declared: dict[str, tuple[str, ...]] = getattr(view, "action_permissions", {}) or {}
    action = _action(request, view)
    if action and action in declared:
        return tuple(declared[action])
    if request.method in declared:
        return tuple(declared[request.method])
    return None


def _action(request: Request, view: Any) -> str | None:
    action = getattr(view, "action", None)
    if action == "metadata":
        # OPTIONS asks "could this client POST/PUT here?": DRF re-checks permissions
        # with a cloned request of that method while ``view.action`` stays "metadata".
        action_map = getattr(view, "action_map", None) or {}
        return action_map.get((request.method or "").lower())
    return action


class SpineAPIPermission(BasePermission):
    """The one permission policy of the API (``DEFAULT_PERMISSION_CLASSES``)."""

    message = "Authentication credentials were not provided."

    def has_permission(self, request: Request, view: Any) -> bool:
        if not hasattr(view, (request.method or "").lower()):
            return True  # no handler for this method: DRF answers 405 next
        perms = required_permissions(request, view)
        user = request.user
        authenticated = bool(user and user.is_authenticated)
        if perms is None:
            if request.method in SAFE_METHODS:
                self.message = "Authentication credentials were not provided."
                return authenticated or bool(settings.SPINE_PUBLIC_READ)
            if getattr(view, "action", None) == "metadata":
                return False  # describing, not doing: just leave the action out
            raise ImproperlyConfigured(
                f"{type(view).__name__} action {getattr(view, 'action', None)!r} "
                f"({request.method}) declares no action_permissions"
            )
        if not authenticated:
            return False
        if user.has_perms(perms):
            return True
        self.message = (
            f"You do not have permission to perform this action (requires {', '.join(perms)})."
        )
        return False


class PublicEndpoint(BasePermission):
    """For documentation endpoints (schema, Swagger UI) that anyone may read."""

    def has_permission(self, request: Request, view: Any) -> bool:
        return request.method in SAFE_METHODS
