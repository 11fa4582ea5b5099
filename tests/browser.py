"""A real headless Chromium (Debian's) driven by Playwright, for page tests."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


@pytest.fixture
def page(live_server, settings) -> Iterator[object]:
    """A fresh browser page; Django's ORM may be used in the test while Playwright's loop runs."""
    # The live server serves static files from the app folders, by their plain names.
    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    path = chromium_path()
    if path is None:
        pytest.skip("needs Debian's chromium (./run test installs it)")
    from playwright.sync_api import sync_playwright

    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=path, headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800})
        from tests.conftest import close_dead_connections

        close_dead_connections()  # this context's own, before the test's fixtures use them
        yield context.new_page()
        context.close()
        browser.close()
        # This context's own connections (the test's ORM calls made them): left open, they
        # outlive the test and the test database cannot be dropped at the session's end.
        from django.db import connections

        for conn in connections.all(initialized_only=True):
            if not conn.in_atomic_block:
                conn.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
