"""The Gradio page against the real TorchServe of the `server` fixture: through gradio_client (the
app's API) and in a real headless Chromium (Debian's, driven by Playwright; Playwright's own
browser download is never used). Screenshots go to tests/output/ui/.
"""

from __future__ import annotations

import csv
import io
import re
import socket
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.waiting import wait_until
from tests.browser import LABEL, TIMEOUT_MS, Browser, Page, classify, expect, label_of, open_page, screenshot

PRIVATE_MARKER = "quokka-privacy-marker-4417"

pytestmark = [
    pytest.mark.ui,
    # Gradio's queue calls pandas APIs that pandas 3 deprecates; nothing this project can change.
    pytest.mark.filterwarnings("ignore:::gradio\\.queueing"),
]

try:
    from ui import app as ui_app
    from ui.app import UiSettings, build_app, launch
except ImportError as error:
    _ui_import_error: ImportError | None = error
else:
    _ui_import_error = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(client: TorchServeClient, settings: UiSettings | None = None, apps: list | None = None) -> Iterator[str]:
    """Run the Gradio app for `client` in this process (background threads); yield its URL.
    `apps`, if given, receives the app object (for tests that look at its result files)."""
    if _ui_import_error is not None:
        pytest.fail(f"the UI cannot be imported ({_ui_import_error}); `make install` installs gradio")
    app = build_app(client, settings or UiSettings(max_rows=50))
    if apps is not None:
        apps.append(app)
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


# --- The app's API, through gradio_client ---------------------------------------------------


@pytest.fixture(scope="module")
def api(ui_url: str):
    from gradio_client import Client

    return Client(ui_url, verbose=False, download_files=False)


def test_api_classify(api):
    probabilities, timing, error = api.predict("The shade is perfect and it lasts all day.", api_name="/classify")
    assert probabilities["label"] in ("positive", "negative")
    assert {c["label"] for c in probabilities["confidences"]} == {"positive", "negative"}
    assert sum(c["confidence"] for c in probabilities["confidences"]) == pytest.approx(1, abs=1e-3)
    line = timing["value"] if isinstance(timing, dict) else timing
    # Under the verdict: which model version answered (the tiny model has no RELEASE: sha-<digest>).
    assert re.search(r"Answered in \d+ ms .*, by model \*\*sentiment\*\* version \*\*sha-[0-9a-f]{12}\*\*", line)


def test_api_batch_keeps_order_and_reports_refusals(api):
    lines = "Great mascara\n\n   \nBroke after a week\n" + "x" * 2001  # blank lines skipped; one too long
    summary, table, download = api.predict(lines, api_name="/classify_lines")
    rows = table["data"]
    assert [row[0] for row in rows] == [1, 2, 3]
    assert rows[0][1] == "Great mascara" and rows[1][1] == "Broke after a week"
    assert rows[0][2] in ("positive", "negative") and rows[1][2] in ("positive", "negative")
    assert rows[2][2] == "" and rows[2][4].startswith("HTTP 413")
    assert "3 reviews" in summary and "1 refused" in summary


def test_api_server_state(api):
    state = api.predict(api_name="/server_state")
    assert re.search(r"Model \*\*sentiment\*\* version sha-[0-9a-f]{12}: \*\*1 of 1\*\* workers ready on CPU", state)


# --- In the browser ---------------------------------------------------------------------------


def test_classifies_a_review(page: Page, ui_url: str):
    open_page(page, ui_url)
    expect(page.locator("#server-state")).to_contain_text("1 of 1 workers ready")
    classify(page, "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads.")

    result = page.locator("#result")
    # The headline is the predicted class; below it both classes with their probabilities.
    expect(label_of(page)).to_have_text(LABEL)
    expect(result).to_contain_text("positive")
    expect(result).to_contain_text("negative")
    percentages = re.findall(r"(\d+(?:\.\d+)?)%", result.inner_text())
    assert len(percentages) == 2 and sum(map(float, percentages)) == pytest.approx(100, abs=2)
    expect(page.locator("#timing")).to_contain_text(re.compile(r"Answered in \d+ ms"))
    expect(page.locator("#timing")).to_contain_text(re.compile(r"by model sentiment version sha-[0-9a-f]{12}"))
    expect(page.locator("#error")).to_be_hidden()
    expect(page.locator("#model-choice")).to_be_hidden()  # a server with one model offers no choice
    screenshot(page, "one-review")


def test_ctrl_enter_submits(page: Page, ui_url: str):
    open_page(page, ui_url)
    box = page.locator("#review textarea")
    box.fill("Smells lovely and lasts all day")
    box.press("Control+Enter")
    expect(label_of(page)).to_have_text(LABEL)
    expect(box).to_have_value("Smells lovely and lasts all day")  # no newline added


def test_example_fills_the_textbox_and_classifies(page: Page, ui_url: str):
    open_page(page, ui_url)
    page.get_by_text("Total waste of money", exact=False).first.click()
    expect(page.locator("#review textarea")).to_have_value(re.compile("^Total waste of money"))
    page.locator("#classify").click()
    expect(label_of(page)).to_have_text(LABEL)


def test_empty_and_too_long_reviews_are_explained(page: Page, ui_url: str):
    open_page(page, ui_url)
    classify(page, "")
    error = page.locator("#error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("HTTP 400")
    expect(error).to_contain_text("review text is empty")  # the handler's own message
    expect(page.get_by_text("Traceback")).to_have_count(0)
    screenshot(page, "empty-review")

    classify(page, "so good " * 300)  # 2,400 characters; the test server allows 2,000
    expect(error).to_contain_text("HTTP 413")

    # The next good review clears the error again.
    classify(page, "Lovely texture, my skin has never looked better.")
    expect(label_of(page)).to_have_text(LABEL)
    expect(error).to_be_hidden()


def test_batch_of_twenty_lines(page: Page, ui_url: str, tmp_path: Path):
    reviews = [f"Review {i}: {'love this cream' if i % 2 else 'it broke after a week'}" for i in range(20)]
    open_page(page, ui_url)
    page.locator("#tab-many-button").click()
    page.locator("#lines textarea").fill("\n".join(reviews))
    page.locator("#classify-lines").click()

    expect(page.locator("#batch-summary")).to_contain_text("20 reviews")
    table = page.locator("#batch-table")
    expect(table.get_by_text("Review 19: love this cream")).to_be_visible()
    labels = re.findall(r"\b(positive|negative)\b", table.inner_text())
    assert len(labels) == 20
    screenshot(page, "many-reviews")

    with page.expect_download() as download_info:
        page.locator("#download a").first.click()
    saved = tmp_path / "results.csv"
    download_info.value.save_as(saved)
    rows = list(csv.DictReader(io.StringIO(saved.read_text(encoding="utf-8"))))
    assert [row["text"] for row in rows] == reviews
    assert all(row["label"] in ("positive", "negative") and 0.5 <= float(row["score"]) <= 1 for row in rows)


def test_batch_from_an_uploaded_csv(page: Page, ui_url: str, tmp_path: Path):
    source = tmp_path / "sephora.csv"
    with source.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["author_id", "rating", "review_text"])
        for i in range(5):
            writer.writerow([i, 5 - i, f"Review number {i}, {'great' if i < 3 else 'awful'} product"])
    open_page(page, ui_url)
    page.locator("#tab-many-button").click()
    page.locator("#tab-csv-button").click()
    page.locator("#csv input[type=file]").set_input_files(source)
    expect(page.locator("#column input")).to_have_value("review_text")  # Sephora's column, guessed
    page.locator("#classify-csv").click()
    expect(page.locator("#batch-summary")).to_contain_text("5 reviews")
    expect(page.locator("#batch-table").get_by_text("Review number 4, awful product")).to_be_visible()


def test_model_without_workers_is_explained(page: Page, ui_url: str, server):
    client = TorchServeClient.for_run_dir(server.run_dir)
    client.scale(0)
    try:
        open_page(page, ui_url)
        expect(page.locator("#server-state")).to_contain_text("still loading")
        classify(page, "Nice shade")
        expect(page.locator("#error")).to_contain_text("HTTP 503")
        screenshot(page, "no-worker")
    finally:
        client.scale(1)
    page.locator("#refresh").click()
    expect(page.locator("#server-state")).to_contain_text("1 of 1 workers ready")


def test_server_down_is_explained(page: Page, down_ui_url: str, caplog: pytest.LogCaptureFixture):
    open_page(page, down_ui_url)
    expect(page.locator("#server-state")).to_contain_text("not reachable")
    classify(page, f"Great mascara. {PRIVATE_MARKER}")
    error = page.locator("#error")
    expect(error).to_contain_text(re.compile(r"TorchServe is not reachable at http://127\.0\.0\.1:\d+"))
    expect(page.get_by_text("Traceback")).to_have_count(0)
    screenshot(page, "server-down")
    assert "classification failed: ConnectionError" in caplog.text  # the failure is logged, the review is not
    assert PRIVATE_MARKER not in caplog.text


def test_explanation_highlights_every_word(page: Page, ui_url: str):
    review = "Gorgeous shade, but it <b>smudges</b> by noon & flakes."
    open_page(page, ui_url)
    page.locator("#review textarea").fill(review)
    page.locator("#explain").click()
    explanation = page.locator("#explanation")
    expect(explanation).to_be_visible()
    expect(label_of(page)).to_have_text(LABEL)
    words = explanation.locator(".explained .word")
    expect(words).to_have_count(len(review.split()))
    assert explanation.locator(".explained").inner_text() == review  # the markup is shown as text, not run
    pushes = [float(w.get_attribute("data-push")) for w in words.all()]
    colours = [w.get_attribute("style") for w in words.all()]
    for push, colour in zip(pushes, colours, strict=True):
        assert ("22, 163, 74" in colour) == (push > 0)  # green towards positive, red towards negative
    expect(page.locator("#timing")).to_contain_text(re.compile(r"Explained in \d+ ms"))
    screenshot(page, "explanation")

    classify(page, "Lovely texture")  # a plain classification hides the old explanation
    expect(explanation).to_be_hidden()


def test_api_explain(api):
    probabilities, timing, error, html = api.predict("Terrible smell, great bottle", api_name="/explain")
    assert probabilities["label"] in ("positive", "negative")
    html = html["value"] if isinstance(html, dict) else html  # an update: value and visibility
    assert html.count('class="word"') == 4


# --- Several users, their files, and unreadable uploads ----------------------------------------


class TogetherClient(TorchServeClient):
    """Answers a classification only while another one is in flight: a page that serves one
    user at a time breaks the barrier and shows an error instead of a label."""

    barrier = threading.Barrier(2, timeout=20)

    def predict(self, text: str) -> dict:
        self.barrier.wait()
        return super().predict(text)


@pytest.fixture(scope="module")
def together_ui_url(server) -> Iterator[str]:
    yield from serve(TogetherClient.for_run_dir(server.run_dir))


def test_two_browser_sessions_classify_at_the_same_time(browser: Browser, together_ui_url: str):
    pages = []
    for _ in range(2):  # two contexts: two sessions, as two people
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        context.set_default_timeout(TIMEOUT_MS)
        pages.append(context.new_page())
    try:
        for page in pages:
            open_page(page, together_ui_url)
        for i, page in enumerate(pages):
            classify(page, f"Reviewer {i}: lovely texture")
        for page in pages:
            expect(label_of(page)).to_have_text(LABEL)
            expect(page.locator("#error")).to_be_hidden()
    finally:
        for page in pages:
            page.context.close()


RESULT_TTL_S = 3


@pytest.fixture(scope="module")
def short_lived_ui(server) -> Iterator[tuple[str, object]]:
    apps: list = []
    settings = UiSettings(max_rows=50, result_ttl_s=RESULT_TTL_S)
    for url in serve(TorchServeClient.for_run_dir(server.run_dir), settings, apps):
        yield url, apps[0]


def test_each_session_gets_its_own_result_file_and_it_expires(short_lived_ui):
    """Two users' batches at the same moment: each download holds that user's reviews only, under
    a name of its own; then the app's file and Gradio's served copy are gone within seconds."""
    import requests
    from gradio_client import Client

    url, app = short_lived_ui
    users = [Client(url, verbose=False, download_files=False) for _ in range(2)]
    barrier = threading.Barrier(2)

    def batch(i: int) -> dict:
        barrier.wait()
        lines = "\n".join(f"user {i} review {n}: nice" for n in range(6))
        return users[i].predict(lines, api_name="/classify_lines")[2]

    with ThreadPoolExecutor(2) as pool:
        downloads = list(pool.map(batch, range(2)))
    files = [d.get("value", d) for d in downloads]
    assert files[0]["path"] != files[1]["path"]
    for i, file in enumerate(files):
        text = requests.get(file["url"], timeout=30).text
        reviews = [row["text"] for row in csv.DictReader(io.StringIO(text))]
        assert reviews == [f"user {i} review {n}: nice" for n in range(6)]
    written = list(app.result_files.root.rglob("*.csv"))
    assert len(written) == 2

    def gone() -> bool:
        return not any(p.exists() for p in written) and not any(requests.get(f["url"], timeout=30).ok for f in files)

    wait_until(gone, RESULT_TTL_S + 15)
    assert not any(p.exists() for p in written), "the app's result files outlived their time"
    assert not any(requests.get(f["url"], timeout=30).ok for f in files), "Gradio still serves the results"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("text\nCaf\xe9\n".encode("latin-1"), "is not UTF-8 text"),
        (b"id,text\n1,fine\n2,one, too many\n", "line 3: more fields than the header has columns"),
        (b'text\n"never closed\n', "not a readable CSV"),
    ],
    ids=["latin-1", "ragged", "open-quote"],
)
def test_api_unreadable_csv_is_a_message(api, tmp_path, content, message):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    path = tmp_path / "reviews.csv"
    path.write_bytes(content)
    with pytest.raises(AppError, match=f"Could not read the CSV: reviews.csv.*{message}"):
        api.predict(handle_file(str(path)), "text", api_name="/classify_csv")


def test_unreadable_upload_is_explained_in_the_page(page: Page, ui_url: str, tmp_path: Path):
    source = tmp_path / "latin1.csv"
    source.write_bytes("review_text\nCr\xe8me br\xfbl\xe9e\n".encode("latin-1"))
    open_page(page, ui_url)
    page.locator("#tab-many-button").click()
    page.locator("#tab-csv-button").click()
    page.locator("#csv input[type=file]").set_input_files(source)
    expect(page.get_by_text("Could not read the CSV: latin1.csv is not UTF-8 text")).to_be_visible()
    expect(page.get_by_text("Traceback")).to_have_count(0)
    screenshot(page, "unreadable-upload")


# --- Sign-in when the page is reachable beyond loopback ---------------------------------------

USER, PASSWORD = "reviewer", "correct-horse-battery-4471"


def test_users_come_from_a_secret_file_or_the_environment(tmp_path):
    secret = tmp_path / "ui_users"
    secret.write_text(f"# operators\n{USER}:{PASSWORD}\n\nsecond:pa:ss\n")
    assert ui_app.ui_users({"SENTIMENT_UI_AUTH_FILE": str(secret)}) == [(USER, PASSWORD), ("second", "pa:ss")]
    assert ui_app.ui_users({"SENTIMENT_UI_AUTH": f"{USER}:{PASSWORD}, b:c"}) == [(USER, PASSWORD), ("b", "c")]
    assert ui_app.ui_users({}) == []
    secret.write_text(f"{USER}:{PASSWORD}\nno-password-here\n")
    with pytest.raises(SystemExit, match="entry 2: expected user:password") as refused:
        ui_app.ui_users({"SENTIMENT_UI_AUTH_FILE": str(secret)})
    assert PASSWORD not in str(refused.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "sentiment.example"])
def test_beyond_loopback_without_users_it_refuses_to_start(host, tmp_path):
    client = TorchServeClient(Endpoints.free(), tmp_path / "key_file.json")
    with pytest.raises(SystemExit, match=f"refusing to serve the page on {re.escape(host)} without credentials"):
        ui_app.serve(client, UiSettings(), host, free_port(), block=False)


@pytest.fixture(scope="module")
def signed_in_ui_url(server) -> Iterator[str]:
    """The page bound to every interface, as in the container, with one user."""
    port = free_port()
    client = TorchServeClient.for_run_dir(server.run_dir)
    app = ui_app.serve(client, UiSettings(max_rows=50), "0.0.0.0", port, block=False, users=[(USER, PASSWORD)])
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        app.close()


def test_api_needs_credentials_beyond_loopback(signed_in_ui_url):
    import requests
    from gradio_client import Client

    with pytest.raises(Exception):  # noqa: B017 (gradio_client's error type varies; the point is no access)
        Client(signed_in_ui_url, verbose=False).predict("sneaking in", api_name="/classify")
    # The app's API, called as a browser would, without the session cookie.
    config = requests.get(f"{signed_in_ui_url}config", timeout=30)
    assert config.status_code == 401
    # "/" is the sign-in page, 200: what the compose and Kubernetes health checks fetch.
    assert requests.get(signed_in_ui_url, timeout=30).status_code == 200
    with pytest.raises(Exception):  # noqa: B017
        Client(signed_in_ui_url, auth=(USER, "wrong"), verbose=False)
    api = Client(signed_in_ui_url, auth=(USER, PASSWORD), verbose=False)
    probabilities, _, _ = api.predict("Lovely texture", api_name="/classify")
    assert probabilities["label"] in ("positive", "negative")


def test_browser_signs_in_then_classifies(page: Page, signed_in_ui_url: str):
    page.goto(signed_in_ui_url)
    expect(page.locator("#classify")).to_have_count(0)  # the login page, not the app
    page.get_by_label("username").fill(USER)
    page.get_by_label("password").fill(PASSWORD)
    screenshot(page, "sign-in")
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#classify")).to_be_visible()
    classify(page, "Lovely texture, my skin has never looked better.")
    expect(label_of(page)).to_have_text(LABEL)


def test_closing_the_tab_deletes_the_sessions_result_files(browser: Browser, short_lived_ui):
    url, app = short_lived_ui
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    before = set(app.result_files.root.iterdir())
    open_page(page, url)
    page.locator("#tab-many-button").click()
    page.locator("#lines textarea").fill("closing review one\nclosing review two")
    page.locator("#classify-lines").click()
    expect(page.locator("#download a").first).to_be_visible()  # the batch is done (not its progress)
    (folder,) = set(app.result_files.root.iterdir()) - before
    context.close()  # the tab goes away: Gradio's unload ends the session
    assert wait_until(lambda: not folder.exists(), 30)
