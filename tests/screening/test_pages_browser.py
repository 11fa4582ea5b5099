"""The queue in a real browser: a reviewer screens tracklets from the keyboard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from screening.models import StampLabel, Verdict
from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import make_user
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def night():
    model = model_version(threshold=0.8)
    scores = {"A": 0.95, "B": 0.9, "C": 0.85, "D": 0.3}
    return {
        name: score_tracklet(ingest_tracklet(name, seed=seed), model, score=score)
        for seed, (name, score) in enumerate(scores.items())
    }


def log_in(page, live_server, url: str) -> None:  # noqa: F811
    page.goto(f"{live_server.url}{url}")
    assert "/accounts/login/" in page.url
    page.fill("input[name=username]", "reviewer")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url(f"**{url}")


def latest(tracklet) -> str:
    return (
        Verdict.objects.filter(tracklet=tracklet)
        .order_by("-id")
        .values_list("value", flat=True)
        .first()
    )


def test_a_reviewer_screens_a_night_from_the_keyboard(page, live_server, night):  # noqa: F811
    reviewer = make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/")
    page.wait_for_load_state("networkidle")
    rows = page.locator(".qrow .tid")
    assert rows.all_inner_texts() == ["A", "B", "C"]  # sorted by score; D is auto-rejected
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    widths = page.eval_on_selector_all(".stamp img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [100] * 12  # every stamp loaded, at the model's 100x100
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "queue.png"))

    page.keyboard.press("r")
    page.wait_for_selector("#toast:has-text('A: real')")
    assert latest(night["A"]) == "real"
    assert Verdict.objects.get(tracklet=night["A"]).reviewer == reviewer
    page.keyboard.press("b")  # the focus moved on to B
    page.wait_for_selector("#toast:has-text('B: bogus')")
    assert latest(night["B"]) == "bogus"
    page.keyboard.press("u")
    page.wait_for_selector("#toast:has-text('B: verdict withdrawn')")
    assert latest(night["B"]) == "withdrawn"
    assert page.locator(".qrow.focused .tid").inner_text() == "B"

    page.keyboard.press("l")  # second stamp of B
    page.keyboard.press("3")  # NOISE, the third class
    page.wait_for_selector("#toast:has-text('Stamp 2 is NOISE')")
    label = StampLabel.objects.get()
    assert (label.detection.tracklet_id, label.detection.index) == (night["B"].pk, 1)
    assert (label.stamp_class.name, label.class_shown, label.reviewer) == ("NOISE", "AST", reviewer)
    assert "→ NOISE" in page.locator(".qrow.focused .stamp.focused").inner_text()

    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("j")
    page.keyboard.press("b")
    page.wait_for_selector("#toast:has-text('C: bogus')")
    page.keyboard.press("o")  # C is the last row: the focus stayed on it
    page.wait_for_url(f"**/tracklets/{night['C'].pk}/")
    assert "bogus" in page.locator("#verdict-history").inner_text()
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "tracklet.png"))


def test_a_failed_save_is_shown_and_nothing_is_recorded(page, live_server, night):  # noqa: F811
    make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/")
    page.route("**/verdict/", lambda route: route.abort())
    page.wait_for_selector(".qrow.focused .stamp.focused")  # the queue's script is ready
    page.keyboard.press("r")
    page.wait_for_selector("#toast.error:has-text('Not saved: A real')")
    assert page.locator(".qrow.failed .tid").inner_text() == "A"
    assert page.locator(".qrow.focused .tid").inner_text() == "A"  # the focus stays to retry
    assert not Verdict.objects.exists()


def test_a_reviewer_cannot_reach_admin_pages(page, live_server, night):  # noqa: F811
    make_user("reviewer", "reviewer")
    log_in(page, live_server, "/")
    page.goto(f"{live_server.url}/admin/screening/modelversion/")
    assert "/admin/login/" in page.url
    assert page.locator("text=not authorized").count() == 1
