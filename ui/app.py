"""A small Gradio page in front of TorchServe: type a review, get its sentiment.

The page holds no model: every classification is one call to TorchServe's inference API through
`TorchServeClient`, which also owns the token keys. Review text is never logged.

    python -m ui.app [--host 127.0.0.1] [--port 7860] [--run-dir ./run]
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

# Before gradio is imported: no telemetry or version check, and no Hugging Face Hub calls.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import gradio as gr  # noqa: E402
import requests  # noqa: E402

from review_sentiment import paths  # noqa: E402
from review_sentiment.client.rest import ApiError, TorchServeClient  # noqa: E402

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860

EXAMPLES = [
    "This moisturizer is amazing: my skin feels soft all day and it doesn't break me out.",
    "The lipstick color is gorgeous and it really lasts through coffee and lunch.",
    "Total waste of money. The pump broke after a week and the cream smells like glue.",
    "This serum gave me a rash on the first night. Returning it.",
    "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads.",
    "Nice packaging and a pleasant scent, but the foundation oxidizes and turns orange by noon.",
]

# System fonts only: the default theme would load web fonts, and the page must work offline.
THEME = gr.themes.Default(
    font=["ui-sans-serif", "system-ui", "Segoe UI", "Helvetica", "Arial", "sans-serif"],
    font_mono=["ui-monospace", "Menlo", "Consolas", "monospace"],
)
CSS = """
#error { border: 1px solid #b91c1c; background: #fef2f2; color: #7f1d1d; border-radius: 6px; padding: 8px 12px; }
"""


def error_message(error: Exception, client: TorchServeClient) -> str:
    """A short, user-facing explanation of a failed call (no stack trace, no review text)."""
    if isinstance(error, ApiError):
        body = error.body
        message = body.get("message") if isinstance(body, dict) else body
        return f"TorchServe refused the request (HTTP {error.status}): {message or 'no details'}"
    if isinstance(error, requests.ConnectionError):
        return f"TorchServe is not reachable at {client.endpoints.inference_url}"
    if isinstance(error, requests.Timeout):
        return f"TorchServe did not answer within {client.timeout:g} s"
    return f"Unexpected error: {type(error).__name__}"


def classify(client: TorchServeClient, text: str) -> tuple[dict[str, float] | None, str | None]:
    """(probabilities per class, None) on success, (None, error message) on failure."""
    try:
        result = client.predict(text)
    except (ApiError, requests.RequestException) as error:
        # Only the kind of failure is logged: the review itself stays private.
        log.warning("classification failed: %s", type(error).__name__)
        return None, error_message(error, client)
    return dict(result["probabilities"]), None


def build_app(client: TorchServeClient) -> gr.Blocks:
    """The page; `client` decides which TorchServe it talks to."""

    def on_classify(text: str) -> tuple[dict[str, float] | None, gr.Markdown]:
        probabilities, error = classify(client, text)
        return probabilities, gr.Markdown(value=error or "", visible=error is not None)

    with gr.Blocks(title="Review sentiment", analytics_enabled=False) as app:
        gr.Markdown(
            "# Review sentiment\n"
            "Classifies a beauty or product review as **positive** or **negative** "
            f"with the DistilBERT model served by TorchServe at `{client.endpoints.inference_url}`."
        )
        with gr.Row():
            with gr.Column(scale=3):
                review = gr.Textbox(label="Review", lines=5, placeholder="Paste a review here...", elem_id="review")
                button = gr.Button("Classify", variant="primary", elem_id="classify")
            with gr.Column(scale=2):
                result = gr.Label(label="Sentiment", num_top_classes=2, elem_id="result")
                error = gr.Markdown(visible=False, elem_id="error")
        gr.Examples(examples=[[text] for text in EXAMPLES], inputs=[review], label="Example reviews")
        button.click(on_classify, inputs=review, outputs=[result, error], api_name="classify")
    return app


def launch(app: gr.Blocks, host: str, port: int, block: bool = True) -> None:
    """Serve `app` locally only: no share link, no server-side rendering (needs Node), no MCP, and no
    run history (it would keep reviews in the browser and offers uploading them to Hugging Face)."""
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        ssr_mode=False,
        mcp_server=False,
        run_history=False,
        prevent_thread_lock=not block,
        theme=THEME,
        css=CSS,
        quiet=not block,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Web page for the review sentiment classifier.")
    parser.add_argument(
        "--host", default=os.environ.get("SENTIMENT_UI_HOST", DEFAULT_HOST), help="also SENTIMENT_UI_HOST"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("SENTIMENT_UI_PORT", DEFAULT_PORT)),
        help="also SENTIMENT_UI_PORT",
    )
    parser.add_argument("--run-dir", type=Path, default=paths.RUN_DIR, help="TorchServe run folder (keys, endpoints)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # Gradio's own start-up self-checks
    launch(build_app(TorchServeClient.for_run_dir(args.run_dir)), args.host, args.port)


if __name__ == "__main__":
    main()
