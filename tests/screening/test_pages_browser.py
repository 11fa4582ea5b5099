"""The queue in a real browser: a reviewer screens tracklets from the keyboard.

Every key and link of the README's key table is pressed here, each checked by what a reviewer
sees and what is stored. The tests wait for the page script's state (a selector, a URL, a class),
never for a fixed time.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from screening.ingest.tracklets import TrackletInput, stamp_from_bytes, tracklet_ingest
from screening.models import StampClass, StampLabel, Verdict
from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import ZTF_DIR, make_user
from tests.stamps import NIGHT, detection_rows, ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db(transaction=True)

READY = "#queue[data-ready]"  # queue.js has focused the first row: keys work from now on


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
    page.wait_for_url(lambda address: address == f"{live_server.url}{url}")
    if url.startswith("/nights/"):
        page.wait_for_selector(READY)


def latest(tracklet) -> str:
    return (
        Verdict.objects.filter(tracklet=tracklet)
        .order_by("-id")
        .values_list("value", flat=True)
        .first()
    )


def latest_label(detection_id: int) -> str | None:
    return (
        StampLabel.objects.filter(detection_id=detection_id)
        .order_by("-id")
        .values_list("stamp_class__name", flat=True)
        .first()
    )


def focused(page) -> str:  # noqa: F811
    return page.locator(".qrow.focused .tid").inner_text()


def focused_stamp(page) -> int:  # noqa: F811
    """The 0-based position of the focused stamp in the focused row."""
    return page.eval_on_selector(
        ".qrow.focused",
        "row => [...row.querySelectorAll('.stamp')].findIndex(s => "
        "s.classList.contains('focused'))",
    )


def row(page, tracklet):  # noqa: F811
    return page.locator(f'.qrow[data-tracklet="{tracklet.pk}"]')


def test_a_reviewer_screens_a_night_from_the_keyboard(page, live_server, night):  # noqa: F811
    reviewer = make_user("reviewer", "reviewer")
    StampClass.objects.create(name="GLARE", is_real=False)  # an admin's: the 9th class
    log_in(page, live_server, f"/nights/{NIGHT}/")
    rows = page.locator(".qrow .tid")
    assert rows.all_inner_texts() == ["A", "B", "C"]  # sorted by score; D is auto-rejected
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    widths = page.eval_on_selector_all(".stamp img", "imgs => imgs.map(i => i.naturalWidth)")
    assert widths == [100] * 12  # every stamp loaded, at the model's 100x100
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "queue.png"))
    page.evaluate("window.stillTheSamePage = true")  # gone if anything reloads the page

    # j / k: next / previous tracklet (and no further than the first or last)
    assert focused(page) == "A"
    page.keyboard.press("j")
    assert focused(page) == "B"
    page.keyboard.press("j")
    page.keyboard.press("j")
    assert focused(page) == "C"
    page.keyboard.press("k")
    page.keyboard.press("k")
    page.keyboard.press("k")
    assert focused(page) == "A"

    # r / b: saved at once without a reload, the focus moves on; u withdraws the last one
    page.keyboard.press("r")
    page.wait_for_selector(f'.qrow.judged-real[data-tracklet="{night["A"].pk}"]')
    page.wait_for_selector("#toast:has-text('A: real')")
    assert latest(night["A"]) == "real"
    assert Verdict.objects.get(tracklet=night["A"]).reviewer == reviewer
    assert focused(page) == "B"
    page.keyboard.press("b")
    page.wait_for_selector(f'.qrow.judged-bogus[data-tracklet="{night["B"].pk}"]')
    page.wait_for_selector("#toast:has-text('B: bogus')")  # saved
    assert latest(night["B"]) == "bogus"
    assert focused(page) == "C"
    page.keyboard.press("u")
    page.wait_for_selector("#toast:has-text('B: verdict withdrawn')")
    assert latest(night["B"]) == "withdrawn"
    assert focused(page) == "B"  # back on the row whose verdict was withdrawn
    assert row(page, night["B"]).get_attribute("data-verdict") == ""
    assert "judged" not in row(page, night["B"]).get_attribute("class")
    assert page.evaluate("window.stillTheSamePage") is True

    # h / l: previous / next stamp of the focused tracklet (and no further than its ends)
    assert focused_stamp(page) == 0
    page.keyboard.press("l")
    assert focused_stamp(page) == 1
    for _ in range(5):
        page.keyboard.press("l")
    assert focused_stamp(page) == 3
    page.keyboard.press("h")
    assert focused_stamp(page) == 2
    for _ in range(5):
        page.keyboard.press("h")
    assert focused_stamp(page) == 0
    page.keyboard.press("l")  # second stamp of B

    # 1...9: the focused stamp's class, in the classes' order (GLARE, an admin's, is the 9th)
    detection = night["B"].detections.get(index=1)
    names = list(StampClass.objects.values_list("name", flat=True))
    assert len(names) == 9 and names[2] == "NOISE" and names[8] == "GLARE"
    for number, name in enumerate(names, start=1):
        page.keyboard.press(str(number))
        page.wait_for_selector(f"#toast:has-text('Stamp 2 is {name}')")  # counted from 1
        assert latest_label(detection.pk) == name
        assert f"→ {name}" in page.locator(".qrow.focused .stamp.focused").inner_text()
    label = StampLabel.objects.filter(detection=detection).order_by("id").first()
    assert (label.stamp_class.name, label.class_shown, label.reviewer) == ("BURN", "AST", reviewer)
    assert StampLabel.objects.filter(detection=detection).count() == 9

    # c: a menu of every class; picking one labels the stamp and closes the menu
    page.keyboard.press("c")
    menu = page.locator("#class-menu")
    assert menu.is_visible()
    assert menu.locator("li").all_inner_texts()[8].startswith("9 GLARE")
    menu.locator("li[data-class='NOISE']").click()
    label_of_focused = page.locator(".qrow.focused .stamp.focused [data-label]")
    # saved: "→ NOISE" without the pending "…" (the name is in a <bdi> of its own)
    label_of_focused.filter(has_text=re.compile("^→ NOISE$")).wait_for()
    assert latest_label(detection.pk) == "NOISE"
    assert menu.is_hidden()
    page.keyboard.press("c")
    assert menu.is_visible()
    page.keyboard.press("Escape")  # Esc closes the menu too
    assert menu.is_hidden()

    # ? and Esc: show and hide the keys
    help_box = page.locator("#help")
    assert help_box.is_hidden()
    page.keyboard.press("?")
    assert help_box.is_visible() and "undo your last verdict" in help_box.inner_text()
    assert "9 GLARE" in help_box.inner_text()
    page.keyboard.press("Escape")
    assert help_box.is_hidden()
    page.keyboard.press("?")
    page.keyboard.press("?")  # ? toggles
    assert help_box.is_hidden()
    assert page.evaluate("window.stillTheSamePage") is True

    # after a reload the verdicts are still shown, coloured from the server's data
    page.goto(f"{live_server.url}/nights/{NIGHT}/?status=all")
    page.wait_for_selector(READY)
    a = row(page, night["A"])
    assert "judged-real" in a.get_attribute("class") and a.get_attribute("data-verdict") == "real"
    assert a.locator("[data-mine]").inner_text() == "you: real"
    assert "judged" not in row(page, night["B"]).get_attribute("class")  # withdrawn
    assert "→ NOISE" in row(page, night["B"]).locator(".stamp").nth(1).inner_text()

    # o and Enter: the focused tracklet's page
    page.goto(f"{live_server.url}/nights/{NIGHT}/")
    page.wait_for_selector(READY)
    page.keyboard.press("j")
    page.keyboard.press("b")
    page.wait_for_selector("#toast:has-text('C: bogus')")
    # C is the last row: the focus left it for the end of the page, so that a second key typed
    # quickly cannot land on C again
    assert page.locator(".qrow.focused").count() == 0
    assert page.locator("#queue-end").is_visible()
    page.keyboard.press("b")
    page.wait_for_selector("#toast:has-text('End of this page')")
    page.keyboard.press("k")
    assert focused(page) == "C"
    page.keyboard.press("o")
    page.wait_for_url(f"**/tracklets/{night['C'].pk}/")
    assert "bogus" in page.locator("#verdict-history").inner_text()
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / "tracklet.png"))
    page.goto(f"{live_server.url}/nights/{NIGHT}/")
    page.wait_for_selector(READY)
    assert focused(page) == "B"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tracklets/{night['B'].pk}/")
    # the tracklet page counts stamps from 1, as the toast and the blink counter do
    labels = page.locator("#label-history tbody tr td:nth-child(3)").all_inner_texts()
    assert set(labels) == {"2"}
    assert page.locator("#blink-frame").inner_text() in {"1", "2", "3", "4"}


@pytest.fixture
def long_night():
    """120 tracklets scored 0.990, 0.989, ...: P000 first, P050 the 51st, P100 the 101st."""
    model = model_version(threshold=0.01)
    for i in range(120):
        score_tracklet(ingest_tracklet(f"P{i:03d}", seed=i, n=3), model, score=0.99 - i / 1000)


def test_n_p_and_the_links_page_through_a_night_keeping_the_filters(
    page,  # noqa: F811
    live_server,
    long_night,
):
    make_user("reviewer", "reviewer")
    filters = "status=all&score_min=0.5&order=desc&per_page=50"
    log_in(page, live_server, f"/nights/{NIGHT}/?{filters}")

    def on_page(number: int, first: str, count: int) -> None:
        # the filters kept, the page's cursor (after / before a row) and its number
        start = f"{live_server.url}/nights/{NIGHT}/?{filters}&"
        page.wait_for_url(lambda url: url.startswith(start) and url.endswith(f"page={number}"))
        page.wait_for_selector(READY)
        tids = page.locator(".qrow .tid").all_inner_texts()
        assert (tids[0], len(tids)) == (first, count)
        assert page.locator(".pager span").inner_text() == f"page {number}"
        for href in page.eval_on_selector_all(".pager a", "links => links.map(a => a.href)"):
            assert "?&" not in href and filters in href

    tids = page.locator(".qrow .tid").all_inner_texts()
    assert (tids[0], tids[-1], len(tids)) == ("P000", "P049", 50)
    assert page.locator("[data-page=prev]").count() == 0
    page.keyboard.press("n")
    on_page(2, "P050", 50)  # the 51st tracklet
    page.keyboard.press("n")
    on_page(3, "P100", 20)  # the 101st
    assert page.locator("[data-page=next]").count() == 0
    page.keyboard.press("n")  # no next page: nothing happens
    page.keyboard.press("j")
    assert focused(page) == "P101"
    page.keyboard.press("p")
    on_page(2, "P050", 50)
    page.click("text=← previous")
    on_page(1, "P000", 50)
    page.click("text=next →")
    on_page(2, "P050", 50)
    page.click("text=next →")
    on_page(3, "P100", 20)
    page.keyboard.press("p")
    on_page(2, "P050", 50)
    page.keyboard.press("p")
    on_page(1, "P000", 50)
    page.keyboard.press("p")  # no previous page: nothing happens
    page.keyboard.press("j")
    assert focused(page) == "P001"


def ztf_tracklet(survey_id: str = "Z1"):
    """A tracklet of four of ZTF's 63x63 difference cutouts."""
    paths = sorted(ZTF_DIR.glob("*_difference.fits.gz"))[:4]
    rows = detection_rows(survey_id, n=len(paths))
    for detection, path in zip(rows, paths, strict=True):
        detection["stamp"] = path.name
    return tracklet_ingest(
        tracklet=TrackletInput(
            night=NIGHT,
            survey_id=survey_id,
            detections=rows,
            stamps={p.name: stamp_from_bytes(p.name, p.read_bytes()) for p in paths},
        )
    ).tracklet


def test_rows_fit_popups_show_and_the_class_menu_stays_in_the_window(page, live_server):  # noqa: F811
    """At 1440x900: 8 stamps on one line, a 63x63 stamp as large as a 100x100 one; the class
    distribution is on top of every other row (auto-rejected ones included) and does not cover
    the next row; the class menu of the last row on screen stays inside the window."""
    model = model_version(threshold=0.5)
    score_tracklet(ingest_tracklet("EIGHT", seed=1, n=8), model, score=0.4)  # auto-rejected
    score_tracklet(ztf_tracklet("Z1"), model, score=0.3)
    for i in range(6):
        score_tracklet(ingest_tracklet(f"R{i}", seed=10 + i), model, score=0.2 - i / 100)
    make_user("reviewer", "reviewer")
    page.set_viewport_size({"width": 1440, "height": 900})
    log_in(page, live_server, f"/nights/{NIGHT}/?status=auto_rejected")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert page.locator(".qrow .tid").all_inner_texts()[:2] == ["EIGHT", "Z1"]

    eight = page.locator(".qrow").nth(0).locator(".stamp img")
    boxes = [eight.nth(i).bounding_box() for i in range(8)]
    assert len({round(b["y"]) for b in boxes}) == 1  # one line
    assert min(b["width"] for b in boxes) >= 96  # about the stamps' own 100 px
    ztf = page.locator(".qrow").nth(1).locator(".stamp img").first
    assert ztf.evaluate("i => i.naturalWidth") == 63  # drawn from its own pixels, no padding
    assert abs(ztf.bounding_box()["width"] - boxes[0]["width"]) < 1
    no_scroll = "document.documentElement.scrollWidth <= document.documentElement.clientWidth"
    assert page.evaluate(no_scroll)

    def distribution_on_top(*, below: bool = False) -> None:
        table = page.locator(".stamp.focused .dist")
        box = table.bounding_box()
        for dx, dy in ((0.5, 0.5), (0.1, 0.9), (0.9, 0.1), (0.1, 0.1), (0.9, 0.9)):
            hit = page.evaluate(
                "([x, y]) => !!document.elementFromPoint(x, y).closest('.stamp.focused .dist')",
                [box["x"] + dx * box["width"], box["y"] + dy * box["height"]],
            )
            assert hit, "the class distribution is covered"
        own = page.locator(".qrow.focused").bounding_box()
        if not below:
            assert box["y"] + box["height"] <= own["y"] + own["height"]  # not over the next row

    page.keyboard.press("j")  # Z1's first stamp: the row above is EIGHT
    page.keyboard.press("l")
    distribution_on_top()
    page.keyboard.press("j")
    page.keyboard.press("l")
    distribution_on_top()
    # no room above in the window: below the stamp, over the next (auto-rejected) row, on top
    page.eval_on_selector(".qrow.focused", "row => row.scrollIntoView({block: 'start'})")
    page.wait_for_selector(".stamp.focused.dist-below")
    distribution_on_top(below=True)

    # the last row that is on screen: its menu opens above the stamp, inside the window
    for _ in range(page.locator(".qrow").count() - 1):
        page.keyboard.press("j")
    assert focused(page) == "R5"
    page.keyboard.press("c")
    menu = page.locator("#class-menu").bounding_box()
    stamp = page.locator(".stamp.focused").bounding_box()
    assert menu["y"] >= 0 and menu["y"] + menu["height"] <= 900
    assert menu["x"] >= 0 and menu["x"] + menu["width"] <= 1440
    below = menu["y"] >= stamp["y"] + stamp["height"] - 1
    assert menu["y"] + menu["height"] <= stamp["y"] + 1 or below  # not over its own stamp


def test_the_favicon_is_served(page, live_server):  # noqa: F811
    make_user("reviewer", "reviewer")
    response = page.request.get(f"{live_server.url}/favicon.ico")
    assert response.ok and response.headers["content-type"].startswith("image/svg+xml")
    page.goto(f"{live_server.url}/accounts/login/")
    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(f"{live_server.url}{icon}").ok


def test_a_failed_save_is_shown_and_nothing_is_recorded(page, live_server, night):  # noqa: F811
    make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/")
    page.route("**/verdict/", lambda route: route.abort())
    page.keyboard.press("r")
    # the focus moved on at once; the save was retried, then reported on its row and in a
    # banner that stays until it is given again
    assert page.locator(".qrow.focused .tid").inner_text() == "B"
    page.wait_for_selector("#toast.error:has-text('Not saved: A real')")
    assert page.locator(".qrow.failed .tid").inner_text() == "A"
    assert "not saved: real" in page.locator(".qrow.failed [data-save]").inner_text()
    assert "NOT SAVED: A real" in page.locator("#unsaved").inner_text()
    assert not Verdict.objects.exists()
    page.keyboard.press("o")  # the page is not left with a verdict unsaved
    page.wait_for_selector("#toast.error:has-text('were not saved')")
    assert "/tracklets/" not in page.url
    page.unroute("**/verdict/")
    page.keyboard.press("k")
    page.keyboard.press("r")
    page.wait_for_selector('#queue[data-pending="0"]')
    assert latest(night["A"]) == "real"
    assert page.locator("#unsaved").is_hidden()
    assert page.locator(".qrow.failed").count() == 0


def test_a_reviewer_cannot_reach_admin_pages(page, live_server, night):  # noqa: F811
    make_user("reviewer", "reviewer")
    log_in(page, live_server, "/")
    page.goto(f"{live_server.url}/admin/screening/modelversion/")
    assert "/admin/login/" in page.url
    assert page.locator("text=not authorized").count() == 1


def test_a_screener_looks_at_neo_candidates_first_and_judges_them(page, live_server):  # noqa: F811
    """digest2's D2 on the rows: the NEO-candidates filter and order, then verdicts by key land
    on the rows shown, row for row."""
    from screening.models import Tracklet
    from screening.scoring.digest2 import digest2_store
    from tests.screening.test_digest2 import MOVERS, _mover

    model = model_version(threshold=0.8)
    movers = [_mover(m[0], i + 1, *m[1:]) for i, m in enumerate(MOVERS)]
    for tracklet in movers:
        score_tracklet(tracklet, model, score=0.9)
    digest2_store([t.pk for t in movers])
    candidates = list(Tracklet.objects.filter(digest2_neo__gte=65).order_by("-digest2_neo", "id"))
    assert 0 < len(candidates) < len(movers)
    make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/")
    page.check("input[name=neo]")
    page.select_option("select[name=order]", "neo")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"neo=1"))
    page.wait_for_selector(READY)
    shown = page.locator(".qrow .tid").all_inner_texts()
    assert shown == [t.survey_id for t in candidates]
    assert page.locator(".qrow .d2-neo").count() == len(candidates)
    for key in "rb"[: len(candidates)]:
        page.keyboard.press(key)
        page.wait_for_timeout(70)  # a screener's pace
    page.wait_for_function("!document.querySelector('.qrow.saving')")
    expected = dict(zip((t.survey_id for t in candidates), ("real", "bogus"), strict=False))
    for tracklet in candidates[:2]:
        assert latest(tracklet) == expected[tracklet.survey_id]
    others = Tracklet.objects.exclude(pk__in=[t.pk for t in candidates])
    assert not Verdict.objects.filter(tracklet__in=others).exists()


def test_a_tracklet_unlike_training_waits_in_the_queue_with_its_reason(page, live_server):  # noqa: F811
    """Below the threshold but unlike the model's training data: in the to-review queue (last,
    by its score) with the reason on its row, judged by key like any other row after paging
    forward, and found by the "unlike training only" filter; the summary counts it."""
    from screening.models import Tracklet

    model = model_version(threshold=0.8)
    passing = [f"P{i:02d}" for i in range(11)]
    for i, survey_id in enumerate(passing):
        score_tracklet(ingest_tracklet(survey_id, seed=i), model, score=0.95 - 0.01 * i)
    score_tracklet(ingest_tracklet("LOW", seed=17), model, score=0.2)  # auto-rejected
    reason = "rate 301 deg/day outside the trained 0.000455-59.3 deg/day"
    score_tracklet(ingest_tracklet("ODD", seed=18), model, score=0.1, unlike_training=reason)
    make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/?per_page=10")
    page.wait_for_selector(READY)
    assert page.locator(".qrow .tid").all_inner_texts() == passing[:10]
    assert page.locator(".qrow .unlike").count() == 0
    # judge two rows of page 1, page forward, judge page 2: the last passing row and ODD
    for key in "rb":
        page.keyboard.press(key)
        page.wait_for_timeout(70)  # a screener's pace
    page.wait_for_function("!document.querySelector('.qrow.saving')")
    page.keyboard.press("n")
    page.wait_for_url(re.compile(r"page=2"))
    page.wait_for_selector(READY)
    assert page.locator(".qrow .tid").all_inner_texts() == ["P10", "ODD"]
    odd = page.locator(".qrow").nth(1)
    assert odd.locator(".unlike").inner_text() == f"⚑ unlike training: {reason}"
    assert "rejected" not in (odd.get_attribute("class") or "")
    for key in "rb":
        page.keyboard.press(key)
        page.wait_for_timeout(70)
    page.wait_for_function("!document.querySelector('.qrow.saving')")
    expected = {"P00": "real", "P01": "bogus", "P10": "real", "ODD": "bogus"}
    for survey_id, verdict in expected.items():
        assert latest(Tracklet.objects.get(survey_id=survey_id)) == verdict, survey_id
    judged = set(Verdict.objects.values_list("tracklet__survey_id", flat=True))
    assert judged == set(expected)  # nothing else, LOW (auto-rejected) included
    page.goto(f"{live_server.url}/nights/{NIGHT}/?status=all")
    page.check("input[name=unlike]")
    page.click("form.filters button[type=submit]")
    page.wait_for_url(re.compile(r"unlike=1"))
    page.wait_for_selector(READY)
    assert page.locator(".qrow .tid").all_inner_texts() == ["ODD"]
    page.goto(f"{live_server.url}/nights/{NIGHT}/summary/")
    assert page.locator("[data-figure=kept_unlike_training]").inner_text() == "1"
    assert page.locator("[data-figure=auto_rejected]").inner_text() == "1"


def test_a_source_that_does_not_move_shows_why_it_was_auto_rejected(page, live_server):  # noqa: F811
    """The motion rule's reason on the auto-rejected row and the tracklet page, found by the
    "not moving only" filter from the summary's card; the rows to review are untouched."""
    from screening.models import Tracklet

    model = model_version(threshold=0.8)
    for i in range(3):
        score_tracklet(ingest_tracklet(f"P{i}", seed=i), model, score=0.95 - 0.01 * i)
    score_tracklet(ingest_tracklet("LOW", seed=17), model, score=0.2)
    reason = (
        "motion 1.2σ of its error, under 3σ: a source that does not move (the networks scored "
        "it 0.970)"
    )
    score_tracklet(ingest_tracklet("STAR", seed=18), model, score=0.4, not_moving=reason)
    make_user("reviewer", "reviewer")
    log_in(page, live_server, f"/nights/{NIGHT}/")
    page.wait_for_selector(READY)
    assert page.locator(".qrow .tid").all_inner_texts() == ["P0", "P1", "P2"]
    assert page.locator(".qrow .still").count() == 0
    page.goto(f"{live_server.url}/nights/{NIGHT}/summary/")
    assert page.locator("[data-figure=not_moving]").inner_text() == "1"
    page.locator("[data-figure=not_moving] a").click()
    page.wait_for_url(re.compile(r"still=1"))
    page.wait_for_selector(READY)
    assert page.locator(".qrow .tid").all_inner_texts() == ["STAR"]
    star = page.locator(".qrow").first
    assert star.locator(".still").inner_text() == f"⊘ not moving: {reason}"
    assert "rejected" in (star.get_attribute("class") or "")
    assert page.locator("input[name=still]").is_checked()
    star.locator(".tid").click()
    page.wait_for_selector("#not-moving")
    assert "Not moving: motion 1.2σ" in page.locator("#not-moving").inner_text()
    assert Tracklet.objects.get(survey_id="STAR").not_moving == reason
