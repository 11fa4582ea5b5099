"""The pages in a real browser: a reviewer logs in, opens a night and sees its stamps."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from screening.ingest import TrackletInput, stamp_from_bytes, tracklet_ingest
from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import make_user
from tests.stamps import NIGHT, detection_rows, stamp_files

pytestmark = pytest.mark.django_db(transaction=True)


def _ingest(survey_id: str, seed: int) -> None:
    files = stamp_files(survey_id, seed=seed)
    tracklet_ingest(
        tracklet=TrackletInput(
            night=NIGHT,
            survey_id=survey_id,
            detections=detection_rows(survey_id, seed=seed),
            stamps={n: stamp_from_bytes(n, d) for n, d in files.items()},
        )
    )


def test_a_reviewer_logs_in_and_sees_the_stamps_of_a_night(page, live_server):  # noqa: F811
    make_user("reviewer", "reviewer")
    for seed, survey_id in enumerate(["A1", "B2", "C3"]):
        _ingest(survey_id, seed)
    page.goto(f"{live_server.url}/nights/{NIGHT}/")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "reviewer")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"**/nights/{NIGHT}/")
    page.wait_for_load_state("networkidle")
    assert page.locator("table.tracklets tbody tr").count() == 3
    widths = page.eval_on_selector_all("td.strip img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [100] * 12  # every stamp image loaded, none broken
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "night.png"), full_page=True)
    page.goto(f"{live_server.url}/admin/")
    assert "/admin/login/" in page.url  # a reviewer is not staff
