"""Issuing API tokens (DRF ``authtoken``): one per user, rotated on demand.

The ``createtoken`` command and tests call this; the admin's "Tokens" page
(``rest_framework.authtoken``) manages the same rows.
"""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from rest_framework.authtoken.models import Token


@transaction.atomic
def issue_token(user: AbstractBaseUser, *, rotate: bool = False) -> tuple[Token, bool]:
    """Return the user's token, creating it if missing; ``rotate`` replaces it.

    The second value says whether a new key was made (old clients of a rotated key
    stop authenticating at once).
    """
    if rotate:
        Token.objects.filter(user=user).delete()
    token, created = Token.objects.get_or_create(user=user)
    return token, created
