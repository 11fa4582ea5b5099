"""Pages are for reviewers and admins; other roles get a 403 that says so, and a night URL that
is not a night is a 404, never a 500."""

from __future__ import annotations

import re

import pytest

from screening.review.verdicts import verdict_record
from tests.conftest import make_user
from tests.stamps import NIGHT, ingest_tracklet

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracklet(reviewer):
    tracklet = ingest_tracklet("T1")
    verdict_record(tracklet_id=tracklet.pk, reviewer=reviewer, value="real")
    return tracklet


def page_urls(tracklet) -> list[str]:
    detection = tracklet.detections.first()
    return [
        "/",
        f"/nights/{NIGHT}/",
        f"/nights/{NIGHT}/summary/",
        f"/nights/{NIGHT}/histogram.png",
        f"/tracklets/{tracklet.pk}/",
        f"/stamps/{detection.pk}.png",
        "/models/",
    ]


@pytest.mark.parametrize("role", ["pipeline", "consumer", None])
def test_accounts_that_are_not_reviewers_or_admins_cannot_read_the_pages(client, tracklet, role):
    from django.contrib.auth.models import User

    user = (
        make_user(f"u-{role}", role)
        if role
        else User.objects.create_user("nobody", password="a-long-test-password")
    )
    client.force_login(user)
    for url in page_urls(tracklet):
        response = client.get(url)
        assert response.status_code == 403, url
        # the logout form's random CSRF token may spell anything: leave it out of the check
        body = re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", response.content.decode())
        assert "reviewers and admins" in body, url
        assert "T1" not in body and NIGHT not in body, url  # nothing of the night leaks


@pytest.mark.parametrize("role", ["reviewer", "admin"])
def test_reviewers_and_admins_read_every_page(client, tracklet, role):
    client.force_login(make_user(f"u-{role}", role))
    for url in page_urls(tracklet):
        assert client.get(url).status_code == 200, url
    history = client.get(f"/tracklets/{tracklet.pk}/").content.decode()
    assert "reviewer" in history  # the verdict history names who judged


@pytest.mark.parametrize(
    "night",
    ["abc", "2026-13-45", "9999-99-99", "2026-W48-2", "20261124", "2026-2-3", "2026-02-30"],
)
def test_a_night_url_that_is_not_a_known_date_is_a_404(client, reviewer, tracklet, night):
    client.force_login(reviewer)
    for suffix in ("", "summary/", "histogram.png"):
        response = client.get(f"/nights/{night}/{suffix}")
        assert response.status_code == 404, (night, suffix)
        assert "not" in response.content.decode().lower()
    assert client.get("/nights/2020-01-01/").status_code == 404  # a date with no night


def test_in_the_admin_verdicts_and_stamp_labels_can_be_read_but_not_changed(client, tracklet):
    from django.contrib.auth.models import User

    from screening.models import StampLabel, Verdict
    from screening.review.verdicts import stamp_label_record

    root = User.objects.create_superuser("root", password="a-long-test-password")
    stamp_label_record(
        detection_id=tracklet.detections.first().pk, reviewer=root, class_name="STREAK"
    )
    client.force_login(root)
    for model, row in (
        ("verdict", Verdict.objects.get()),
        ("stamplabel", StampLabel.objects.get()),
    ):
        base = f"/admin/screening/{model}/"
        listing = client.get(base).content.decode()
        assert f"{base}{row.pk}/change/" in listing and "Delete selected" not in listing
        assert client.get(f"{base}add/").status_code == 403
        view = client.get(f"{base}{row.pk}/change/")
        assert view.status_code == 200 and 'name="_save"' not in view.content.decode()
        assert client.post(f"{base}{row.pk}/change/", {"value": "bogus"}).status_code == 403
        assert client.post(f"{base}{row.pk}/delete/", {"post": "yes"}).status_code == 403
        action = client.post(
            base, {"action": "delete_selected", "_selected_action": [row.pk], "post": "yes"}
        )
        assert action.status_code in (200, 302)
    assert Verdict.objects.get().value == "real" and StampLabel.objects.count() == 1


def test_a_permission_of_the_account_or_its_role_counts_and_a_role_taken_away_ends_access(
    client, tracklet
):
    """Roles and permissions are read afresh each request (one query): a reviewer moved to the
    pipeline role loses the pages at once; a permission given to an account alone (not its
    role) lets it give verdicts on the API."""
    from django.contrib.auth.models import Group, Permission

    from tests.conftest import make_user

    user = make_user("moved", "reviewer")
    client.force_login(user)
    assert client.get(f"/nights/{NIGHT}/").status_code == 200
    user.groups.set([Group.objects.get(name="pipeline")])
    assert client.get(f"/nights/{NIGHT}/").status_code == 403
    assert not user.__class__.objects.get(pk=user.pk).has_perm("screening.add_verdict")
    user.user_permissions.add(Permission.objects.get(codename="add_verdict"))
    fresh = user.__class__.objects.get(pk=user.pk)
    assert fresh.has_perm("screening.add_verdict")
    assert fresh.has_perm("screening.add_tracklet")  # the pipeline role's own
    assert not fresh.has_perm("screening.view_verdict")
