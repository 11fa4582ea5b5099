"""The demo's logins survive a restart: the same passwords and tokens are printed again."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

pytestmark = pytest.mark.django_db


def demo_users(path) -> str:
    out = io.StringIO()
    call_command("demo_users", "--logins-file", str(path), stdout=out)
    return out.getvalue()


def test_a_restart_prints_the_same_logins_and_they_still_log_in(client, tmp_path):
    logins = tmp_path / "demo-logins.txt"
    first = demo_users(logins)
    again = demo_users(logins)
    assert first == again and logins.read_text() == first
    reviewer_line = next(line for line in first.splitlines() if "reviewer" in line)
    password = reviewer_line.split(" / ")[1].split()[0]
    response = client.post("/accounts/login/", {"username": "reviewer", "password": password})
    assert response.status_code == 302 and client.get("/").status_code == 200


def test_a_login_changed_since_gets_a_new_password_that_works(tmp_path):
    from django.contrib.auth.models import User

    logins = tmp_path / "demo-logins.txt"
    first = demo_users(logins)
    admin = User.objects.get(username="admin")
    admin.set_password("changed-by-hand-123")
    admin.save()
    again = demo_users(logins)
    line = next(line for line in again.splitlines() if "admin" in line)
    assert line not in first
    assert User.objects.get(username="admin").check_password(line.split(" / ")[1].split()[0])
