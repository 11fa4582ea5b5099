"""The queue's layout in a real browser, measured: each row compact (the facts right next to
the stamps, about a stamp high), enough rows in a laptop's window, nothing overflowing a narrow
one."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.browser import page  # noqa: F401 - the fixture
from tests.conftest import make_user
from tests.stamps import NIGHT, ingest_tracklet, model_version, score_tracklet

pytestmark = pytest.mark.django_db(transaction=True)

# Detections per tracklet: ATLAS's usual 4 or 5, a short one, and a long one of 8.
DETECTIONS = [4, 5, 4, 8, 4, 3, 5, 4, 4]

MEASURE = """() => {
  const box = (element) => element.getBoundingClientRect();
  const rows = [...document.querySelectorAll('.qrow')].map((row) => {
    const stamps = [...row.querySelectorAll('.strip .stamp')];
    const facts = box(row.querySelector('.facts'));
    return {
      row: box(row).toJSON(),
      facts: facts.toJSON(),
      strip: box(row.querySelector('.strip')).toJSON(),
      lastStamp: box(stamps[stamps.length - 1]).toJSON(),
      image: box(stamps[0].querySelector('img')).toJSON(),
      stamps: stamps.length,
      overflows: row.scrollWidth > row.clientWidth,
    };
  });
  return {
    rows,
    width: window.innerWidth,
    height: window.innerHeight,
    pageWidth: document.documentElement.scrollWidth,
    filtersBottom: box(document.querySelector('.filters')).bottom,
  };
}"""


@pytest.fixture
def night():
    model = model_version(threshold=0.5)
    return [
        score_tracklet(ingest_tracklet(f"L{i}", seed=i, n=n), model, score=0.99 - i / 100)
        for i, n in enumerate(DETECTIONS)
    ]


def open_queue(page, live_server, width: int, height: int) -> dict:  # noqa: F811
    page.set_viewport_size({"width": width, "height": height})
    url = f"{live_server.url}/nights/{NIGHT}/"
    if "/accounts/login/" in page.url or page.url in ("", "about:blank"):
        page.goto(url)
        page.fill("input[name=username]", "reviewer")
        page.fill("input[name=password]", "a-long-test-password")
        page.click("button[type=submit]")
        page.wait_for_url(url)
    else:
        page.goto(url)
    page.wait_for_selector(".qrow")
    page.wait_for_function("Array.from(document.images).every(i => i.complete)")
    if os.environ.get("SCREENSHOT_DIR"):
        page.screenshot(path=str(Path(os.environ["SCREENSHOT_DIR"]) / f"queue-{width}.png"))
    layout = page.evaluate(MEASURE)
    assert len(layout["rows"]) == len(DETECTIONS)
    return layout


@pytest.mark.parametrize("blind", [True, False], ids=["blind", "scores-shown"])
def test_rows_are_compact_and_four_fit_in_a_laptops_window(
    page,  # noqa: F811
    live_server,
    night,
    request,
    blind,
):
    """Blind (the product's default: "class after verdict" under each stamp, "?" for the score)
    and with the scores shown."""
    if blind:
        request.getfixturevalue("blind_rows")
    make_user("reviewer", "reviewer")
    for width, height in ((1400, 900), (1280, 720)):
        layout = open_queue(page, live_server, width, height)
        captions = page.locator(".qrow .stamp figcaption").all_inner_texts()
        assert all(("class after verdict" == c.strip()) == blind for c in captions), captions
        # the facts line up from row to row, right after the page's longest strip, not across
        # a gap of half the window
        assert len({round(r["facts"]["left"]) for r in layout["rows"]}) == 1, width
        widest = max(r["lastStamp"]["right"] for r in layout["rows"])
        gap = layout["rows"][0]["facts"]["left"] - widest
        assert 0 <= gap <= 32, (width, gap)
        for row in layout["rows"]:
            stamp = row["image"]["height"]
            assert stamp >= 80, (width, row)  # stamps keep (nearly) their 100 px
            # a row is about a stamp high (one line of caption and a little padding more)
            assert row["row"]["height"] <= stamp + 32, (width, row)
            assert row["facts"]["bottom"] <= row["row"]["bottom"] + 0.5, (width, row)
            assert not row["overflows"] and row["row"]["right"] <= layout["width"], (width, row)
        assert layout["pageWidth"] <= layout["width"], layout
        if height == 720:
            below = [r for r in layout["rows"] if r["row"]["top"] >= layout["filtersBottom"]]
            whole = [r for r in below if r["row"]["bottom"] <= layout["height"]]
            assert len(whole) >= 4, [(r["row"]["top"], r["row"]["bottom"]) for r in below]


def test_nothing_overflows_a_narrow_window(page, live_server, night):  # noqa: F811
    make_user("reviewer", "reviewer")
    for width in (1024, 1100, 1180):
        layout = open_queue(page, live_server, width, 720)
        assert layout["pageWidth"] <= layout["width"], (width, layout["pageWidth"])
        for row in layout["rows"]:
            assert not row["overflows"], (width, row)
            for part in ("row", "facts", "strip", "lastStamp"):
                assert row[part]["right"] <= layout["width"] + 0.5, (width, part, row)
            assert row["image"]["height"] >= 60, (width, row)  # stamps still readable
