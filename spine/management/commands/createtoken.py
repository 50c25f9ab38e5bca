"""``manage.py createtoken <username>``: print (or make) a user's API token."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import CommandParser

from spine.api.tokens import issue_token
from spine.cli import SpineCommand, bad_input


class Command(SpineCommand):
    help = (
        "Print the API token of a user, creating it if needed. Send it as "
        "'Authorization: Token <key>'. Exit codes: 0 printed, 2 no such (active) user."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username", help="An existing user's username.")
        parser.add_argument(
            "--rotate", action="store_true", help="Replace the existing token with a new one."
        )
        parser.add_argument(
            "--create-user",
            action="store_true",
            help="Create the user (without a password, so no admin login) if it does not exist.",
        )
        parser.add_argument("--json", action="store_true", help="Print a JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        username = options["username"]
        try:
            user = user_model._default_manager.get_by_natural_key(username)
        except user_model.DoesNotExist:
            if not options["create_user"]:
                raise bad_input(
                    f"no user named {username!r}; create it first (createsuperuser) "
                    "or pass --create-user"
                ) from None
            # No password given: Django stores an unusable one.
            user = user_model._default_manager.create_user(username=username)
        if not user.is_active:
            raise bad_input(f"user {username!r} is inactive; a token would not authenticate")
        token, created = issue_token(user, rotate=options["rotate"])
        if options["json"]:
            payload = {"username": username, "token": token.key, "created": created}
            self.stdout.write(json.dumps(payload))
        else:
            self.stdout.write(token.key)
