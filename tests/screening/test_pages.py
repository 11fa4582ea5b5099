"""Web pages and stamp images need a login; stamp images are cached by the browser."""

from __future__ import annotations

import pytest

from screening.ingest import TrackletInput, stamp_from_bytes, tracklet_ingest
from tests.stamps import NIGHT, detection_rows, stamp_files

pytestmark = pytest.mark.django_db


@pytest.fixture
def tracklet():
    files = stamp_files("T1")
    return tracklet_ingest(
        tracklet=TrackletInput(
            night=NIGHT,
            survey_id="T1",
            detections=detection_rows("T1"),
            stamps={n: stamp_from_bytes(n, d) for n, d in files.items()},
        )
    ).tracklet


def test_pages_and_stamps_redirect_to_the_login_when_logged_out(client, tracklet):
    detection = tracklet.detections.first()
    for url in ("/", f"/nights/{NIGHT}/", f"/stamps/{detection.pk}.png"):
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_a_reviewer_sees_the_night_and_its_stamps(client, reviewer, tracklet):
    client.force_login(reviewer)
    home = client.get("/")
    assert NIGHT in home.content.decode()
    night = client.get(f"/nights/{NIGHT}/").content.decode()
    detection = tracklet.detections.get(index=2)
    assert "T1" in night and f"/stamps/{detection.pk}.png" in night


def test_a_stamp_image_is_cached_and_a_revisit_costs_no_transfer(client, reviewer, tracklet):
    client.force_login(reviewer)
    detection = tracklet.detections.first()
    first = client.get(f"/stamps/{detection.pk}.png")
    assert first.status_code == 200 and first["Content-Type"] == "image/png"
    assert b"".join(first.streaming_content).startswith(b"\x89PNG")
    assert "max-age=" in first["Cache-Control"] and "private" in first["Cache-Control"]
    again = client.get(f"/stamps/{detection.pk}.png", HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304


def test_the_login_page_logs_a_reviewer_in(client, reviewer):
    response = client.post(
        "/accounts/login/", {"username": "reviewer", "password": "a-long-test-password"}
    )
    assert response.status_code == 302
    assert client.get("/").status_code == 200
