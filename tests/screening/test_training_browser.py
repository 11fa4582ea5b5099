"""An admin retrains from the browser: a real worker trains, the page shows live progress, the
candidate is promoted (forced, since a few labels cannot show it keeps real recall)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from screening.models import JobStatus, ModelActivation, ModelVersion, TrainingRun
from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import make_user
from tests.stamps import glare_labelled_setup

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.services]


def test_an_admin_retrains_and_promotes_from_the_browser(
    page,  # noqa: F811
    live_server,
    start_worker,
    tmp_path,
):
    models_dir = tmp_path / "models"
    active = glare_labelled_setup(models_dir, tracklets=8, real=3)
    start_worker("training", TRAINING_QUICK="1", TRAINING_DEVICE="cpu", MODELS_DIR=str(models_dir))
    make_user("root", "admin")

    page.goto(f"{live_server.url}/models/")
    page.fill("input[name=username]", "root")
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_url("**/models/")
    page.click("#start-training")
    page.wait_for_selector(".run-live")
    seen = page.wait_for_function(
        "() => { const p = document.querySelector('.run-progress');"
        " return p === null || p.value > 0.01 }",
        timeout=120_000,
    )
    assert seen
    page.wait_for_selector("tr.status-succeeded", timeout=180_000)
    run = TrainingRun.objects.get()
    assert run.status == JobStatus.SUCCEEDED and run.candidate.classes[-1] == "GLARE"
    assert ModelVersion.objects.get(is_active=True) == active
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "models.png"), full_page=True)

    page.click(f"a:has-text('{run.candidate.version}')")
    page.wait_for_selector("#promotion")
    # what changed against the base, on the same tracklets: real recall first, GLARE new
    changes = page.locator("#changes tbody tr").all_inner_texts()
    assert changes[0].startswith("real recall\tfixed synthetic set")
    assert any(row.startswith("real tracklets lost / gained") for row in changes)
    glare_stamps = next(r for r in changes if r.startswith("GLARE stamps: recall"))
    assert glare_stamps.endswith("— not in this model")  # the base has no GLARE class
    if page.locator("input[name=force]").count():
        page.check("input[name=force]")
    page.click("#activate")
    message = page.wait_for_selector(".messages li")
    assert "success" in message.get_attribute("class"), message.inner_text()
    assert ModelVersion.objects.get(is_active=True) == run.candidate
    record = ModelActivation.objects.get()
    assert record.by.username == "root" and record.previous == active
