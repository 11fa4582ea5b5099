"""`manage.py demo_users`: create the demo's reviewer, admin and pipeline logins and print them.

With `--logins-file`, logins that still work are kept: a restart of the demo prints the same
passwords and tokens, and only a login whose password no longer matches gets a new one.
"""

from __future__ import annotations

import re
import secrets
from pathlib import Path

from django.contrib.auth.models import Group, User
from django.core.management.base import BaseCommand, CommandParser
from rest_framework.authtoken.models import Token

from screening.ops.roles import ADMIN, PIPELINE, REVIEWER

LINE = re.compile(r"^\s*(\w+)\s+login: (\S+) / (\S+)")


class Command(BaseCommand):
    help = "Create the demo logins (reviewer, admin) and a pipeline API token, and print them."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--password", help="use this password instead of random ones")
        parser.add_argument(
            "--logins-file",
            type=Path,
            help="read the logins printed last time from here (kept if they still work) and "
            "write the new list to it",
        )

    def handle(self, *args, password: str | None, logins_file: Path | None, **options) -> None:
        known = _read_logins(logins_file) if logins_file and logins_file.exists() else {}
        lines = []
        for username, role in (("reviewer", REVIEWER), ("admin", ADMIN), ("pipeline", PIPELINE)):
            user, _ = User.objects.get_or_create(username=username)
            secret = password or known.get(username)
            if secret is None or not user.check_password(secret):
                secret = password or secrets.token_urlsafe(9)
                user.set_password(secret)
            user.is_staff = role == ADMIN
            user.is_superuser = role == ADMIN
            user.save()
            user.groups.set([Group.objects.get(name=role)])
            token, _ = Token.objects.get_or_create(user=user)
            lines.append(f"{role:9s} login: {username} / {secret}   API token: {token.key}")
        if logins_file:
            logins_file.parent.mkdir(parents=True, exist_ok=True)
            logins_file.write_text("".join(f"{line}\n" for line in lines))
        for line in lines:
            self.stdout.write(line)


def _read_logins(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        match = LINE.match(line)
        if match:
            out[match.group(2)] = match.group(3)
    return out
