"""`manage.py demo_users`: create (or reset) the demo's reviewer, admin and pipeline logins."""

from __future__ import annotations

import secrets

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

from screening.roles import ADMIN, PIPELINE, REVIEWER


class Command(BaseCommand):
    help = "Create the demo logins (reviewer, admin) and a pipeline API token, and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="use this password instead of random ones")

    def handle(self, *args, password: str | None, **options) -> None:
        for username, role in (("reviewer", REVIEWER), ("admin", ADMIN), ("pipeline", PIPELINE)):
            user, _ = User.objects.get_or_create(username=username)
            secret = password or secrets.token_urlsafe(9)
            user.set_password(secret)
            user.is_staff = role == ADMIN
            user.is_superuser = role == ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            token, _ = Token.objects.get_or_create(user=user)
            self.stdout.write(f"{role:9s} login: {username} / {secret}   API token: {token.key}")
