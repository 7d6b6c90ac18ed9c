"""The Gradio page in front of TorchServe: one review, many reviews, and the server's state.

The page holds no model: it calls TorchServe's inference API through the project's client
(`ui/backend.py` does the work; this file is layout and wiring). Review text is never logged.

    python -m ui.app [--host 127.0.0.1] [--port 7860] [--run-dir ./run]     # `make ui`

Bound beyond loopback it requires sign-in, with users from SENTIMENT_UI_AUTH_FILE or
SENTIMENT_UI_AUTH, and refuses to start without them (it holds the server's keys).
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import tempfile
from pathlib import Path

# ui/__init__.py has set the offline variables before gradio is imported (no telemetry).
import gradio as gr

from review_sentiment import paths
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.core.offline import apply_offline
from review_sentiment.endpoints import is_loopback
from ui import backend
from ui.settings import UiSettings

log = logging.getLogger(__name__)


SEED_REVIEW = (
    "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads. I bought it because "
    "it states in the name that it clears pores. Not what I expected for this price. It is a nice texture though."
)
EXAMPLES = [
    SEED_REVIEW,
    "Love it!",
    "Total waste of money. The pump broke after a week and the cream smells like glue.",
    "Nice packaging and a pleasant scent, but the foundation oxidizes and turns orange by noon.",
    "The lipstick color is gorgeous and it really lasts through coffee and lunch.",
    (
        "I have combination skin that gets oily by lunchtime and flaky around my nose in winter, so I am picky "
        "about moisturizers. I tried this one for six weeks before writing this. The first few days I was not "
        "sure: it felt a little heavy when I applied it at night and I worried it would clog my pores. It did "
        "not. By the second week the dry patches were gone, my makeup went on smoother in the morning and the "
        "shine at midday was clearly less than with my old cream. The jar lasts a long time because you only "
        "need a pea-sized amount. The scent is light and fades quickly. It is not cheap, but I have already "
        "bought a second jar and I recommend it to anyone with skin like mine."
    ),
]

# System fonts only: the default theme loads web fonts, and the page must work offline.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"],
)
CSS = """
.message-error { border: 1px solid #b91c1c; background: #fef2f2; color: #7f1d1d; border-radius: 6px; padding: 8px; }
#timing { color: #4b5563; font-size: 0.9em; }
.explained { line-height: 2; white-space: pre-wrap; }
.explained .word { border-radius: 3px; padding: 1px 2px; }
.key { border-radius: 3px; padding: 1px 6px; color: #fff; }
.key.positive { background: rgb(22, 163, 74); }
.key.negative { background: rgb(220, 38, 38); }
.note { color: #4b5563; font-size: 0.9em; }
"""
# Ctrl+Enter (Cmd+Enter on a Mac) in the review box presses Classify; Enter keeps adding lines.
HEAD = """
<script>
document.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey) && event.target.closest("#review")) {
    event.preventDefault();
    document.querySelector("#classify")?.click();
  }
});
</script>
"""


def build_app(client: TorchServeClient, settings: UiSettings | None = None) -> gr.Blocks:
    """The page; `client` decides which TorchServe it talks to."""
    settings = settings or UiSettings.from_env()
    results = _result_files(settings.result_ttl_s)

    def on_session_end(request: gr.Request) -> None:
        results.end_session(request.session_hash)

    # Gradio's own copies (uploads, the downloads it serves) are deleted on the same schedule.
    delete_cache = (max(1, int(min(60, settings.result_ttl_s))), max(1, int(settings.result_ttl_s)))
    with gr.Blocks(title="Review sentiment", analytics_enabled=False, delete_cache=delete_cache) as app:
        model = _build_header(app, client)
        app.unload(on_session_end)
        _build_one_review_tab(client, model)
        _build_many_reviews_tab(client, settings, results, model)
    app.queue(default_concurrency_limit=settings.concurrent_users)
    app.result_files = results  # type: ignore[attr-defined]  # for tests and the session clean-up
    return app


def _result_files(ttl_s: float) -> backend.ResultFiles:
    root = Path(tempfile.mkdtemp(prefix="sentiment-ui-"))  # result CSVs; whatever is left goes at exit
    atexit.register(shutil.rmtree, root, True)
    return backend.ResultFiles(root, ttl_s)


def _build_header(app: gr.Blocks, client: TorchServeClient) -> gr.Radio:
    """The title, the server's state (on load and on Refresh), and the model choice, shown only
    where the server offers more than the default; returns the choice (an input of every tab)."""

    def on_state() -> str:
        return backend.server_state(client)[1]

    def on_models() -> gr.Radio:
        choices = backend.model_choices(client)
        return gr.Radio(choices=choices, value=client.model, visible=len(choices) > 1)

    gr.Markdown(
        "# Review sentiment\n"
        "Says whether a product review is **positive** or **negative**, with the models "
        f"served by TorchServe at `{client.endpoints.inference_url}` (each answer names its model)."
    )
    with gr.Row(equal_height=True):
        state = gr.Markdown(elem_id="server-state")
        refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="refresh")
    # Every model the page knows, so that API calls naming one pass Gradio's check; each page
    # load then shows the ones this server registers (hidden when only the default).
    model = gr.Radio(
        choices=backend.known_models(client),
        value=client.model,
        label="Model",
        info="The accurate model is slower; every answer names the model that gave it.",
        visible=False,
        elem_id="model-choice",
    )
    app.load(on_state, outputs=state, api_name="server_state")
    app.load(on_models, outputs=model, api_visibility="private")
    refresh.click(on_state, outputs=state, api_visibility="private")
    refresh.click(on_models, outputs=model, api_visibility="private")
    return model


def _answer(result: backend.SingleResult, timing: str) -> tuple:
    """The label's probabilities, then the line under them (`timing` and which model version
    answered, unless it failed) and the error."""
    timing = timing if not result.error else ""
    if timing and result.answered_by:
        timing = timing.rstrip(".") + f", by {result.answered_by}."
    return (
        result.probabilities,
        gr.Markdown(value=timing, visible=bool(timing)),
        gr.Markdown(value=result.error or "", visible=result.error is not None),
    )


def _build_one_review_tab(client: TorchServeClient, model: gr.Radio) -> None:
    """One review: classify it, or explain which words decided, with example reviews to try."""

    def on_classify(text: str, name: str | None):
        result = backend.classify_one(backend.for_model(client, name), text)
        return _answer(result, f"Answered in {result.elapsed_ms:.0f} ms (round trip to TorchServe).")

    def on_explain(text: str, name: str | None):
        result = backend.explain_one(backend.for_model(client, name), text)
        timing = f"Explained in {result.elapsed_ms:.0f} ms (Integrated Gradients on TorchServe)."
        return (*_answer(result, timing), gr.HTML(value=result.html, visible=bool(result.html)))

    with gr.Tab("One review", elem_id="tab-one"):
        with gr.Row():
            with gr.Column(scale=3):
                review = gr.Textbox(
                    label="Review",
                    lines=6,
                    placeholder="Paste a review here, then press Classify or Ctrl+Enter",
                    elem_id="review",
                )
                with gr.Row():
                    button = gr.Button("Classify", variant="primary", elem_id="classify")
                    explain_button = gr.Button("Explain: which words decided?", elem_id="explain")
            with gr.Column(scale=2):
                result = gr.Label(label="Sentiment", num_top_classes=2, elem_id="result")
                timing = gr.Markdown(visible=False, elem_id="timing")
                error = gr.Markdown(visible=False, elem_id="error", elem_classes="message-error")
        explanation = gr.HTML(visible=False, elem_id="explanation")
        gr.Examples(examples=[[text] for text in EXAMPLES], inputs=[review], label="Example reviews")
    button.click(on_classify, inputs=[review, model], outputs=[result, timing, error], api_name="classify").then(
        lambda: gr.HTML(visible=False), outputs=explanation, api_visibility="private"
    )
    explain_button.click(
        on_explain, inputs=[review, model], outputs=[result, timing, error, explanation], api_name="explain"
    )


def _read_upload(path: str) -> tuple[list[str], list[dict[str, str]]]:
    try:
        return backend.csv_rows(path)
    except (backend.TableError, OSError) as error:
        # The reason in words (bad encoding, a broken or ragged row, gone); never a traceback.
        log.warning("unreadable upload: %s", type(error).__name__)
        raise gr.Error(f"Could not read the CSV: {error}") from None


def on_upload(path: str | None):
    """The column choice for a new upload, its review column guessed."""
    if not path:
        return gr.Dropdown(choices=[], value=None)
    columns, _ = _read_upload(path)
    return gr.Dropdown(choices=columns, value=backend.guess_text_column(columns))


def _batch_scorer(client: TorchServeClient, settings: UiSettings, results: backend.ResultFiles):
    """scored(texts, input rows or None, model, request, progress): the summary, the table and the download."""

    def scored(
        texts: list[str],
        sources: list[dict[str, str]] | None,
        model: str | None,
        request: gr.Request,
        progress: gr.Progress,
    ):
        if not texts:
            raise gr.Error("No reviews to classify: paste one review per line, or upload a CSV.")
        if len(texts) > settings.max_rows:
            raise gr.Error(f"{len(texts)} reviews: at most {settings.max_rows} at once (SENTIMENT_UI_MAX_ROWS).")
        progress((0, len(texts)), desc="Classifying", unit="reviews")
        rows = backend.classify_many(
            backend.for_model(client, model),
            texts,
            settings.concurrency,
            lambda done, total: progress((done, total), desc="Classifying", unit="reviews"),
        )
        output = results.write(request.session_hash, backend.results_csv(rows, sources))
        positive = sum(r.label == "positive" for r in rows)
        failed = sum(bool(r.error) for r in rows)
        summary = f"{len(rows)} reviews: {positive} positive, {len(rows) - positive - failed} negative"
        summary += f", {failed} refused (see the error column)" if failed else ""
        summary += f"; by model **{model or client.model}**."
        return summary, backend.table(rows), gr.File(value=str(output), visible=True)

    return scored


def _build_many_reviews_tab(
    client: TorchServeClient, settings: UiSettings, results: backend.ResultFiles, model: gr.Radio
) -> None:
    """Many reviews, pasted one per line or uploaded as a CSV: a table on the page and a CSV to download."""
    scored = _batch_scorer(client, settings, results)

    def on_lines(text: str, name: str | None, request: gr.Request, progress=gr.Progress()):  # noqa: B008 (Gradio's progress bar)
        return scored(backend.lines_of(text), None, name, request, progress)

    def on_csv(path: str | None, column: str | None, name: str | None, request: gr.Request, progress=gr.Progress()):  # noqa: B008
        if not path:
            raise gr.Error("Upload a CSV file first.")
        columns, rows = _read_upload(path)
        if column not in columns:
            raise gr.Error(f"Choose the column that holds the reviews (the file has: {', '.join(columns)}).")
        return scored([row.get(column) or "" for row in rows], rows, name, request, progress)

    with gr.Tab("Many reviews", elem_id="tab-many"):
        with gr.Tab("Paste lines", elem_id="tab-lines"):
            lines = gr.Textbox(label="One review per line", lines=8, elem_id="lines")
            lines_button = gr.Button("Classify all", variant="primary", elem_id="classify-lines")
        with gr.Tab("Upload a CSV", elem_id="tab-csv"):
            upload = gr.File(label="CSV file (UTF-8, with a header row)", file_types=[".csv"], elem_id="csv")
            column = gr.Dropdown(
                label="Column with the review text",
                choices=[],
                allow_custom_value=True,  # API callers name the column; on_csv checks it against the file
                elem_id="column",
            )
            csv_button = gr.Button("Classify all", variant="primary", elem_id="classify-csv")
        outputs = _batch_outputs()
    batches = {"concurrency_id": "batch", "concurrency_limit": max(1, settings.concurrent_users // 2)}
    lines_button.click(on_lines, inputs=[lines, model], outputs=outputs, api_name="classify_lines", **batches)
    upload.change(on_upload, inputs=upload, outputs=column, api_visibility="private")
    csv_button.click(on_csv, inputs=[upload, column, model], outputs=outputs, api_name="classify_csv", **batches)


def _batch_outputs() -> list[gr.components.Component]:
    """The batch's summary line, its table, and the results CSV to download (shown once there is one)."""
    summary = gr.Markdown(elem_id="batch-summary")
    batch_table = gr.Dataframe(
        headers=backend.TABLE_HEADERS,
        datatype=["number", "str", "str", "number", "str"],
        interactive=False,
        wrap=True,
        elem_id="batch-table",
    )
    download = gr.File(label="Download the results (CSV)", visible=False, elem_id="download")
    return [summary, batch_table, download]


def ui_users(environ=os.environ) -> list[tuple[str, str]]:
    """Who may use the page: one `user:password` a line in the file SENTIMENT_UI_AUTH_FILE (a
    mounted secret), or comma-separated in SENTIMENT_UI_AUTH (an environment variable filled from
    a secret). Never from the repository. Errors name the line, never the password."""
    path = environ.get("SENTIMENT_UI_AUTH_FILE")
    if path:
        try:
            entries = Path(path).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise SystemExit(f"SENTIMENT_UI_AUTH_FILE {path}: cannot read it ({error.strerror})") from None
        source = f"SENTIMENT_UI_AUTH_FILE {path}"
    else:
        entries, source = environ.get("SENTIMENT_UI_AUTH", "").split(","), "SENTIMENT_UI_AUTH"
    users = []
    for number, entry in enumerate(entries, start=1):
        entry = entry.strip()
        if not entry or entry.startswith("#"):
            continue
        user, sep, password = entry.partition(":")
        if not sep or not user or not password:
            raise SystemExit(f"{source}, entry {number}: expected user:password with both parts non-empty")
        users.append((user, password))
    return users


def serve(
    client: TorchServeClient,
    settings: UiSettings,
    host: str,
    port: int,
    block: bool = True,
    users: list[tuple[str, str]] | None = None,
) -> gr.Blocks:
    """Build and launch the page. The page holds the server's keys, so it is a way into the model
    for whoever reaches it: bound to loopback it may stay open; bound anywhere else it requires
    credentials, or does not start."""
    if not users and not is_loopback(host):
        raise SystemExit(
            f"refusing to serve the page on {host} without credentials: anyone reaching it could use the "
            "model with this server's keys. Set SENTIMENT_UI_AUTH_FILE (a file of user:password lines) or "
            "SENTIMENT_UI_AUTH, or bind to 127.0.0.1."
        )
    app = build_app(client, settings)
    launch(app, host, port, block, auth=users or None)
    return app


def launch(app: gr.Blocks, host: str, port: int, block: bool = True, auth: list[tuple[str, str]] | None = None) -> None:
    """Serve `app` locally only: no share link, no server-side rendering (it starts a Node process
    that `close()` leaves running), no MCP, and no run history (it would keep reviews in the
    browser and offers uploading them to Hugging Face). `auth`: Gradio's login page for these users."""
    app.launch(
        server_name=host,
        server_port=port,
        auth=auth,
        auth_message="Review sentiment: sign in with the user and password your operator gave you.",
        share=False,
        ssr_mode=False,
        mcp_server=False,
        run_history=False,
        footer_links=["api", "settings"],
        prevent_thread_lock=not block,
        theme=THEME,
        css=CSS,
        head=HEAD,
        quiet=not block,
    )


def main(argv: list[str] | None = None) -> None:
    apply_offline()  # the UI process's start: no Gradio telemetry (read when the page is built)
    settings = UiSettings.from_env()
    parser = argparse.ArgumentParser(description="Web page for the review sentiment classifier.")
    parser.add_argument("--host", default=settings.host, help="also SENTIMENT_UI_HOST (default %(default)s)")
    parser.add_argument("--port", type=int, default=settings.port, help="also SENTIMENT_UI_PORT (default %(default)s)")
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=paths.run_dir(),
        help="TorchServe's run folder, for its endpoints.json and key_file.json (also SENTIMENT_RUN_DIR)",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up self-checks
    users = ui_users()
    client = TorchServeClient.for_run_dir(args.run_dir)
    log.info("page on %s:%d, %s", args.host, args.port, f"{len(users)} users may sign in" if users else "no sign-in")
    serve(client, settings, args.host, args.port, users=users)


if __name__ == "__main__":
    main()
