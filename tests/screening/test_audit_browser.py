"""Auditing and MPC reports in a real browser: audit rows are screened from the keyboard like
any other row, the alarm banner shows, an admin makes and opens a night's ADES report."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from screening.models import MpcReport, QueueAssignment, Tracklet
from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import make_user
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("blind_rows")]

READY = "#queue[data-ready]"


@pytest.fixture
def night(settings):
    """6 tracklets passing a 0.5 threshold, 12 auto-rejected; 3 of those drawn for audit."""
    settings.AUDIT_RATE = 0.0
    settings.AUDIT_MIN_PER_NIGHT = 3
    settings.SECOND_SCREENING_RATE = 0.0
    model = model_version(threshold=0.5)
    for i in range(18):
        score = 0.6 + 0.05 * i if i < 6 else 0.02 * (i - 5)
        score_tracklet(ingest_tracklet(f"T{i:02d}", seed=i, n=3), model, score=score)
    drawn = QueueAssignment.objects.filter(kind="audit").values_list("tracklet_id", flat=True)
    return model, set(drawn)


def log_in(page, live_server, url: str, username: str) -> None:  # noqa: F811
    page.goto(f"{live_server.url}{url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(lambda address: address == f"{live_server.url}{url}")


def test_audit_rows_are_screened_like_any_other_and_the_alarm_shows(
    page,  # noqa: F811
    live_server,
    night,
):
    model, drawn = night
    assert len(drawn) == 3
    make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/", "reviewer")
    page.wait_for_selector(READY)
    ids = [
        int(x)
        for x in page.eval_on_selector_all(".qrow", "rows => rows.map(r => r.dataset.tracklet)")
    ]
    assert len(ids) == 9 and drawn <= set(ids)
    # What a reviewer sees of each row: the same, audit or not.
    assert set(page.locator(".qrow .score").all_inner_texts()) == {"?"}
    assert set(page.locator(".qrow .status").all_inner_texts()) == {"to review"}
    assert page.locator(".qrow.rejected").count() == 0
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "queue-blind.png"))
    # Screen every row from the keyboard: real on the first two audit rows, bogus elsewhere.
    audit_order = [pk for pk in ids if pk in drawn]
    real = set(audit_order[:2])
    for pk in ids:
        assert page.locator(".qrow.focused").get_attribute("data-tracklet") == str(pk)
        page.keyboard.press("r" if pk in real else "b")
        page.wait_for_selector(f'.qrow[data-tracklet="{pk}"][data-verdict]:not([data-verdict=""])')
    page.wait_for_selector('#queue[data-pending="0"]')  # every verdict saved
    judged = dict(QueueAssignment.objects.filter(kind="audit").values_list("tracklet_id", "value"))
    assert judged == {pk: "real" if pk in real else "bogus" for pk in drawn}
    # 2 real in 3 audits: the banner on every page, the summary's status.
    page.goto(f"{live_server.url}/nights/{NIGHT}/summary/")
    banner = page.locator("[data-alarm]")
    # the night and the rolling window: both in alarm
    assert banner.count() == 2
    assert "2 real in 3 audited auto-rejections" in banner.first.inner_text()
    assert page.locator("#audit tr[data-status=alarm]").count() == 1
    page.goto(f"{live_server.url}/")
    assert page.locator("[data-alarm]").count() == 2
    # Once judged, the row shows its score again (blind only until the verdict).
    page.goto(f"{live_server.url}/tracklets/{audit_order[0]}/")
    assert page.locator("#blind-note").count() == 0
    assert page.locator("#prediction-history").count() == 1


def test_an_admin_makes_the_nights_ades_report_and_opens_it(page, live_server, night):  # noqa: F811
    from screening.review.verdicts import verdict_record

    reviewer = make_user("reviewer", "reviewer")
    make_user("boss", "admin")
    real = list(Tracklet.objects.filter(score__gte=0.5).order_by("-score")[:2])
    for t in real:
        verdict_record(tracklet_id=t.pk, reviewer=reviewer, value="real")
    log_in(page, live_server, f"/nights/{NIGHT}/summary/", "boss")
    assert page.locator("#report-ready").inner_text() == "2"
    page.click("#report-make")
    page.wait_for_selector("#psv")
    report = MpcReport.objects.get()
    assert page.locator("#report-sha").inner_text() == report.content_sha256
    assert "permID|provID|trkSub|mode|stn|obsTime" in page.locator("#psv").inner_text()
    with page.expect_download() as download:
        page.click("#download-xml")
    assert Path(download.value.path()).read_text() == report.xml
    page.click("#report-send")
    page.wait_for_selector("#send-log")
    assert "dry run" in page.locator("#send-log").inner_text()
    # Again: nothing new, the same report.
    page.goto(f"{live_server.url}/nights/{NIGHT}/summary/")
    assert page.locator("#report-ready").inner_text() == "0"
    page.click("#report-make")
    page.wait_for_selector("#psv")
    assert MpcReport.objects.count() == 1
    assert "nothing new to report" in page.locator(".messages").inner_text()
