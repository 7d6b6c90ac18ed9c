"""Headless Chromium for the UI tests (Debian's chromium driven by Playwright; Playwright's own
browser download is never used): the `browser` and `page` fixtures (registered in conftest.py)
and the page actions the UI and image tests share."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and no calls home: the page under test must be the only thing the browser talks to.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "output" / "ui"
# Fresh output is greyed for ~150 ms while an overlay fades: screenshots want no transitions.
NO_ANIMATIONS = "*, *::before, *::after { transition: none !important; animation: none !important; }"
TIMEOUT_MS = 60_000  # generous: the CPUs are shared with other work
LABEL = re.compile(r"^\s*(positive|negative)\s*$")

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # reported by the `browser` fixture, so the tests fail rather than skip
    sync_playwright = None


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if sync_playwright is None:
        pytest.fail("the `playwright` pip package is missing; `make install` installs it")
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing (Debian package `chromium`); `make install` installs it")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page that fails the test if it requests anything but the local app."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    yield page
    context.close()
    external = sorted({url for url in requested if urlparse(url).hostname not in ("127.0.0.1", None)})
    assert not external, f"the page fetched from outside: {external}"


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    page.add_style_tag(content=NO_ANIMATIONS)
    expect(page.locator("#classify")).to_be_visible()


def sign_in(page: Page, url: str, user: str, password: str) -> None:
    """Through Gradio's login page (the page bound beyond loopback, or given users) to the app."""
    page.goto(url)
    page.get_by_label("username").fill(user)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    # The login navigates to the app: style the page once it has arrived, not the one leaving
    # (a style added mid-navigation fails with "Execution context was destroyed").
    expect(page.locator("#classify")).to_be_visible()
    page.add_style_tag(content=NO_ANIMATIONS)


def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=SCREENSHOTS / f"{name}.png", full_page=True, animations="disabled")


def classify(page: Page, text: str) -> None:
    page.locator("#review textarea").fill(text)
    page.locator("#classify").click()


def label_of(page: Page):
    return page.locator("#result").get_by_test_id("label-output-value")
