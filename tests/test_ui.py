"""The Gradio page, driven by a real headless Chromium against the real TorchServe of the `server` fixture.

Needs Debian's `chromium` and the `playwright` and `gradio` pip packages (`make install`); Playwright's
own browser download is never used.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest

from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints

pytestmark = [
    pytest.mark.ui,
    # Gradio's queue calls pandas APIs that pandas 3 deprecates; nothing this project can change.
    pytest.mark.filterwarnings("ignore:::gradio\\.queueing"),
]

CHROMIUM = Path("/usr/bin/chromium")
# Headless, and no calls home: the page under test must be the only thing the browser talks to.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PRIVATE_MARKER = "quokka-privacy-marker-4417"
TIMEOUT_MS = 60_000  # generous: the CPUs are shared with other work

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # reported by the `browser` fixture, so the tests fail rather than skip
    sync_playwright = None

try:
    from ui.app import build_app, launch
except ImportError as error:
    _ui_import_error: ImportError | None = error
else:
    _ui_import_error = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(client: TorchServeClient) -> Iterator[str]:
    """Run the Gradio app for `client` in this process (background threads); yield its URL."""
    if _ui_import_error is not None:
        pytest.fail(f"the UI cannot be imported ({_ui_import_error}); `make install` installs gradio")
    app = build_app(client)
    port = free_port()
    launch(app, "127.0.0.1", port, block=False)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


@pytest.fixture(scope="module")
def ui_url(server) -> Iterator[str]:
    yield from serve(TorchServeClient.for_run_dir(server.run_dir))


@pytest.fixture(scope="module")
def down_ui_url(tmp_path_factory) -> Iterator[str]:
    """The app pointed at a port where nothing listens (and at a key file that does not exist)."""
    nowhere = Endpoints.free()
    yield from serve(TorchServeClient(nowhere, tmp_path_factory.mktemp("nokeys") / "key_file.json"))


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
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    requested: list[str] = []
    context.on("request", lambda request: requested.append(request.url))
    page = context.new_page()
    yield page
    context.close()
    external = sorted({url for url in requested if urlparse(url).hostname not in ("127.0.0.1", None)})
    assert not external, f"the page fetched from outside: {external}"


def classify(page: Page, text: str) -> None:
    page.locator("#review textarea").fill(text)
    page.locator("#classify").click()


def test_classifies_a_review(page: Page, ui_url: str, tmp_path: Path):
    page.goto(ui_url)
    expect(page.locator("#classify")).to_be_visible()
    classify(page, "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads.")

    result = page.locator("#result")
    # The headline is the predicted class; below it both classes with their probabilities.
    expect(result.get_by_test_id("label-output-value")).to_have_text(re.compile(r"^\s*(positive|negative)\s*$"))
    expect(result).to_contain_text("positive")
    expect(result).to_contain_text("negative")
    percentages = re.findall(r"(\d+(?:\.\d+)?)%", result.inner_text())
    assert len(percentages) == 2 and sum(map(float, percentages)) == pytest.approx(100, abs=2)
    expect(page.locator("#error")).to_be_hidden()
    page.screenshot(path=tmp_path / "ui.png", full_page=True)


def test_example_fills_the_textbox(page: Page, ui_url: str):
    page.goto(ui_url)
    page.get_by_text("Total waste of money", exact=False).first.click()
    expect(page.locator("#review textarea")).to_have_value(re.compile("^Total waste of money"))


def test_empty_review_shows_the_servers_message(page: Page, ui_url: str, tmp_path: Path):
    page.goto(ui_url)
    classify(page, "")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("HTTP 400")
    expect(error).to_contain_text("review text is empty")  # TorchServe handler's own message
    expect(page.get_by_text("Traceback")).to_have_count(0)
    page.screenshot(path=tmp_path / "ui-error.png", full_page=True)

    # The next good review clears the error again.
    classify(page, "Lovely texture, my skin has never looked better.")
    expect(page.locator("#result").get_by_test_id("label-output-value")).to_have_text(re.compile("positive|negative"))
    expect(error).to_be_hidden()


def test_server_down_is_explained(page: Page, down_ui_url: str, caplog: pytest.LogCaptureFixture):
    page.goto(down_ui_url)
    classify(page, f"Great mascara. {PRIVATE_MARKER}")
    error = page.locator("#error")
    expect(error).to_contain_text(re.compile(r"TorchServe is not reachable at http://127\.0\.0\.1:\d+"))
    expect(page.get_by_text("Traceback")).to_have_count(0)
    assert "classification failed: ConnectionError" in caplog.text  # the failure is logged, the review is not
    assert PRIVATE_MARKER not in caplog.text
