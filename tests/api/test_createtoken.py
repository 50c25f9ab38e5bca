"""``manage.py createtoken``: prints a working token, reuses or rotates it."""

from __future__ import annotations

import io
import json

import pytest
from django.contrib.auth.models import User
from django.core.management import CommandError, call_command
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

pytestmark = [pytest.mark.embedded, pytest.mark.django_db]


def run(*args: str) -> str:
    out = io.StringIO()
    call_command("createtoken", *args, stdout=out)
    return out.getvalue().strip()


def test_prints_a_token_that_authenticates(reader: User) -> None:
    key = run("reader")
    assert Token.objects.get(user=reader).key == key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get("/api/v1/pipelines/").status_code == 200


def test_same_token_until_rotated(reader: User) -> None:
    first = json.loads(run("reader", "--json"))
    again = json.loads(run("reader", "--json"))
    rotated = json.loads(run("reader", "--json", "--rotate"))
    assert first == {"username": "reader", "token": first["token"], "created": True}
    assert again == {**first, "created": False}
    assert rotated["created"] is True and rotated["token"] != first["token"]
    assert Token.objects.filter(user=reader).count() == 1


def test_unknown_user_is_an_error_unless_created() -> None:
    with pytest.raises(CommandError, match="no user named 'ghost'") as excinfo:
        run("ghost")
    assert excinfo.value.returncode == 2
    payload = json.loads(run("ghost", "--create-user", "--json"))
    user = User.objects.get(username="ghost")
    assert not user.has_usable_password()
    assert Token.objects.get(user=user).key == payload["token"]


def test_inactive_user_is_refused(reader: User) -> None:
    reader.is_active = False
    reader.save()
    with pytest.raises(CommandError, match="inactive") as excinfo:
        run("reader")
    assert excinfo.value.returncode == 2
