"""Screenshots of the main pages for the docs, taken in Debian's headless Chromium.

Usage: python docs/make_screenshots.py URL USERNAME PASSWORD NIGHT, against a running server
(the README's come from `./run demo`'s scored night).
"""

from __future__ import annotations

import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.browser import CHROMIUM_ARGS, chromium_path  # noqa: E402

OUT = Path(__file__).resolve().parent / "screenshots"


def main(url: str, username: str, password: str, night: str) -> None:
    OUT.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 860})
        page.goto(f"{url}/accounts/login/")
        page.fill("input[name=username]", username)
        page.fill("input[name=password]", password)
        page.click("button[type=submit]")
        page.wait_for_url(f"{url}/")
        # The "all" view: scores and classes show (the to-review queue is blind until a verdict).
        page.goto(f"{url}/nights/{night}/?status=all")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.keyboard.press("l")  # focus the second stamp: its class distribution shows
        page.screenshot(path=str(OUT / "queue.png"))
        page.keyboard.press("o")
        page.wait_for_url("**/tracklets/*/")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.keyboard.press(" ")  # pause the blink on its first frame
        page.screenshot(path=str(OUT / "tracklet.png"), full_page=True)
        page.goto(f"{url}/nights/{night}/summary/")
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.screenshot(path=str(OUT / "summary.png"))
        page.goto(f"{url}/models/")
        page.screenshot(path=str(OUT / "models.png"))
        page.click("tr.active a")  # the active model's page: ROC, confusion, score histogram
        page.wait_for_function("Array.from(document.images).every(i => i.complete)")
        page.screenshot(path=str(OUT / "model.png"), full_page=True)
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:5])
