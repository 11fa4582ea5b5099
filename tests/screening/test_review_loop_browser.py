"""The reviewer's loop in a real browser, typed at human speed: every key lands on the row that
had the focus, across pages, with a slow server; two reviewers on one night at once; undo after
a reload; the focus back from a tracklet's page; the score revealed after a blind verdict.
"""

from __future__ import annotations

import pytest

from screening.models import Tracklet, Verdict
from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import make_user
from tests.screening.test_review_loop import thirty  # noqa: F401 - the fixture
from tests.stamps import NIGHT

pytestmark = pytest.mark.django_db(transaction=True)

READY = "#queue[data-ready]"
SAVED = '#queue[data-pending="0"]'
KEY_DELAY_MS = 66  # 15 keys a second


def log_in(page, live_server, username: str, url: str) -> None:  # noqa: F811
    page.goto(f"{live_server.url}{url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "a-long-test-password")
    page.click("button[type=submit]")
    page.wait_for_selector(READY)


def verdict_log(reviewer) -> list[tuple[str, str]]:
    return list(
        Verdict.objects.filter(reviewer=reviewer)
        .order_by("id")
        .values_list("tracklet__survey_id", "value")
    )


def test_keys_typed_at_15_a_second_land_on_their_rows_across_two_pages(
    page,  # noqa: F811
    live_server,
    thirty,  # noqa: F811
    settings,
):
    settings.SCREENING_SAVE_DELAY_SECONDS = 0.25  # each save answers well after the next key
    alice = make_user("alice", "reviewer")
    log_in(page, live_server, "alice", f"/nights/{NIGHT}/?per_page=10")
    first_page = "bbrbrrbbrb"  # b b on two rows, b r on two rows: each its own row
    second_page = "rrbbbrbrbb"
    page.keyboard.type(first_page + "n", delay=KEY_DELAY_MS)
    # the page is left only once every save is in (n waits), then the next page's rows
    page.wait_for_url(lambda url: "after=" in url and url.endswith("page=2"))
    page.wait_for_selector(READY)
    assert page.locator(".qrow .tid").all_inner_texts() == [f"P{i:02d}" for i in range(10, 20)]
    page.keyboard.type(second_page, delay=KEY_DELAY_MS)
    page.wait_for_selector(SAVED, timeout=20_000)
    typed = {"r": "real", "b": "bogus"}
    expected = [(f"P{i:02d}", typed[key]) for i, key in enumerate(first_page + second_page)]
    assert verdict_log(alice) == expected  # row for row, in the order typed
    assert page.locator("#unsaved").is_hidden()
    # every row shows the verdict it was given, and (not blind here) its score
    marks = page.locator(".qrow [data-mine]").all_inner_texts()
    assert marks == [f"you: {typed[key]}" for key in second_page]


def test_two_reviewers_screen_one_night_at_once_without_judging_the_same_tracklets(
    page,  # noqa: F811
    live_server,
    thirty,  # noqa: F811
):
    alice, bob = make_user("alice", "reviewer"), make_user("bob", "reviewer")
    log_in(page, live_server, "alice", f"/nights/{NIGHT}/?per_page=10")
    browser = page.context.browser
    other = browser.new_context(viewport={"width": 1280, "height": 800})
    bobs = other.new_page()
    try:
        log_in(bobs, live_server, "bob", f"/nights/{NIGHT}/?per_page=10")
        a = page.locator(".qrow .tid").all_inner_texts()
        b = bobs.locator(".qrow .tid").all_inner_texts()
        assert a == [f"P{i:02d}" for i in range(10)]
        assert b == [f"P{i:02d}" for i in range(10, 20)]  # what alice holds is left out
        # alice opens one of bob's rows from its link and judges it on the tracklet's page
        page.goto(f"{live_server.url}/tracklets/{thirty['P11'].pk}/")
        page.keyboard.press("b")
        page.wait_for_selector("#my-verdict:text-is('bogus')")
        # within a poll (3 s), with no reload, bob's page marks it and his keys pass it by
        p11 = bobs.locator(f'.qrow[data-tracklet="{thirty["P11"].pk}"]')
        bobs.wait_for_selector(f'.qrow.taken[data-tracklet="{thirty["P11"].pk}"]', timeout=10_000)
        assert p11.locator("[data-taken]").inner_text() == "judged by alice"
        bobs.keyboard.type("rr", delay=KEY_DELAY_MS)  # P10, then P12: P11 is skipped
        bobs.wait_for_selector(SAVED)
        assert verdict_log(bob) == [("P10", "real"), ("P12", "real")]
        page.goto(f"{live_server.url}/nights/{NIGHT}/?per_page=10")
        page.wait_for_selector(READY)
        page.keyboard.type("bbb", delay=KEY_DELAY_MS)
        page.wait_for_selector(SAVED)
        assert verdict_log(alice) == [
            ("P11", "bogus"),
            ("P00", "bogus"),
            ("P01", "bogus"),
            ("P02", "bogus"),
        ]
        judged_twice = [t.survey_id for t in Tracklet.objects.filter(n_reviews__gt=1)]
        assert judged_twice == []
    finally:
        other.close()


def test_blind_verdicts_reveal_undo_survives_a_reload_focus_survives_a_tracklet_page(
    page,  # noqa: F811
    live_server,
    thirty,  # noqa: F811
    settings,
):
    settings.SCREENING_BLIND = True
    alice = make_user("alice", "reviewer")
    log_in(page, live_server, "alice", f"/nights/{NIGHT}/?per_page=10")
    # no black squares: every display image was drawn before the page was shown
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    assert page.locator(".stamp.loading").count() == 0
    first = page.locator(f'.qrow[data-tracklet="{thirty["P00"].pk}"]')
    assert first.locator(".score").inner_text() == "?"
    page.keyboard.press("r")
    # the score and classes appear on the row right after the verdict
    page.wait_for_selector(f'.qrow[data-tracklet="{thirty["P00"].pk}"][data-blind="0"]')
    assert first.locator(".score").inner_text() == "0.990"
    assert "AST 0.90" in first.locator(".stamp").first.inner_text()
    verdict = Verdict.objects.get(reviewer=alice)
    assert (verdict.blind, verdict.score_shown) == (True, None)
    # j j: focus on P03; its page and back: the focus is still on P03
    page.keyboard.type("jj", delay=KEY_DELAY_MS)
    assert page.locator(".qrow.focused .tid").inner_text() == "P03"
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/tracklets/{thirty['P03'].pk}/")
    assert page.locator("#blind-note").is_visible()
    page.go_back()
    page.wait_for_selector(READY)
    assert page.locator(".qrow.focused .tid").inner_text() == "P03"
    # a reload (P00, judged, leaves the to-review view), then u: P00's verdict is withdrawn
    page.reload()
    page.wait_for_selector(READY)
    assert "P00" not in page.locator(".qrow .tid").all_inner_texts()
    page.keyboard.press("u")
    page.wait_for_selector("#toast:has-text('P00: verdict withdrawn')")
    assert verdict_log(alice) == [("P00", "real"), ("P00", "withdrawn")]
    # the popup of a stamp's classes: none on load, one at a time
    page.keyboard.press("r")  # P03 (focused) judged: revealed
    page.wait_for_selector(SAVED)
    assert page.locator(".stamp.show-dist").count() == 0  # none shown by moving rows
    page.keyboard.press("k")
    page.keyboard.press("l")  # P03's second stamp: its classes, alone
    assert page.locator(".qrow.focused .stamp.show-dist").count() == 1
    stamp = page.locator(".qrow.focused .stamp").nth(2)
    stamp.hover()
    assert page.locator(".stamp.show-dist").count() == 1
    assert "show-dist" in stamp.get_attribute("class")
