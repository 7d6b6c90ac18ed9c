"""What the page does, without Gradio: one review, many reviews, the server's state, readable errors.

Every classification is a call to TorchServe's inference API through `TorchServeClient`, which
also owns the token keys. Review text is never logged: failures are logged by kind only.
"""

from __future__ import annotations

import copy
import hashlib
import html
import io
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import requests

from review_sentiment import paths, tables
from review_sentiment.client.many import iter_predictions
from review_sentiment.client.rest import ApiError, TorchServeClient, ready_count
from review_sentiment.core.errors import ErrorKind
from review_sentiment.tables import TableError

__all__ = ["TableError"]  # raised by csv_rows; the page turns it into a message

log = logging.getLogger(__name__)

PREVIEW_CHARS = 120  # of each review in the batch table; the downloaded CSV has the whole text


# Kinds a retry a moment later can fix.
RETRY_LATER = {
    ErrorKind.QUEUE_FULL,
    ErrorKind.NO_WORKER,
    ErrorKind.QUEUE_FULL_OR_NO_WORKER,
    ErrorKind.EXPLAIN_BUSY,
    ErrorKind.WORKER_LOST,
}


def failure_message(error: Exception, client: TorchServeClient) -> str:
    """One sentence a person can act on, for any failed call (never a traceback or the review)."""
    if isinstance(error, ApiError):
        body = error.body if isinstance(error.body, dict) else {}
        detail = body.get("message") or (error.body if isinstance(error.body, str) else "") or "no details"
        if error.kind == ErrorKind.NOT_AUTHORIZED:
            return (
                f"TorchServe refused this app's key (HTTP {error.status}). The UI reads the keys from "
                f"{client.keys.path}; start the UI from the server's run folder (SENTIMENT_RUN_DIR)."
            )
        if error.kind in RETRY_LATER:
            return f"TorchServe cannot take the request now (HTTP {error.status}): {detail} Try again in a moment."
        if error.kind == ErrorKind.NOT_FOUND:
            return f"TorchServe has no model '{client.model}' (HTTP 404): is it still being registered?"
        return f"TorchServe refused the request (HTTP {error.status}): {detail}"
    if isinstance(error, requests.ConnectionError):
        return f"TorchServe is not reachable at {client.endpoints.inference_url}: is it running (`make serve`)?"
    if isinstance(error, requests.Timeout):
        return f"TorchServe did not answer within {client.timeout:g} s"
    return f"Unexpected error: {type(error).__name__}"


# What the page calls each model the server may offer: the default first.
MODEL_TITLES = {
    paths.ACCURATE_MODEL_NAME: "Accurate (EmbeddingGemma-300M, slower)",
}


def known_models(client: TorchServeClient) -> list[tuple[str, str]]:
    """(title, name) of every model the page can offer, the client's own (the default) first."""
    own = [(f"Fast ({client.model}, DistilBERT)", client.model)]
    return own + [(title, name) for name, title in MODEL_TITLES.items() if name != client.model]


def model_choices(client: TorchServeClient) -> list[tuple[str, str]]:
    """(title, name) of the models a user may pick: the client's own (the fast default), then
    `sentiment-accurate` where the server registers it (SENTIMENT_ACCURATE_MODEL=on). Only the
    default when the management API does not answer (the choice then stays hidden)."""
    try:
        listed = client._checked(client.request("GET", "management", "/models"))
        names = {m["modelName"] for m in listed["models"]}  # type: ignore[index]
    except (ApiError, requests.RequestException, KeyError, TypeError):
        names = set()
    return [(title, name) for title, name in known_models(client) if name == client.model or name in names]


def for_model(client: TorchServeClient, model: str | None) -> TorchServeClient:
    """`client` asking `model` instead (same server, keys and session), or `client` itself."""
    if not model or model == client.model:
        return client
    other = copy.copy(client)
    other.model, other.version = model, None
    return other


@dataclass(frozen=True)
class SingleResult:
    probabilities: dict[str, float] | None
    error: str | None
    elapsed_ms: float
    html: str = ""  # explanations: the review with its words highlighted
    answered_by: str = ""  # "model **sentiment** version **v2**": which model version answered


def answered_by(result: dict) -> str:
    """Which model and version produced an answer, in words for the page ("" if it does not say)."""
    if not result.get("model_version"):
        return ""
    return f"model **{result.get('model')}** version **{result['model_version']}**"


def _one(client: TorchServeClient, text: str, explain: bool) -> SingleResult:
    start = time.perf_counter()
    try:
        result = client.explain(text) if explain else client.predict(text)
    except (ApiError, requests.RequestException) as error:
        # The kind of failure only, never the review.
        log.warning("%s failed: %s", "explanation" if explain else "classification", type(error).__name__)
        return SingleResult(None, failure_message(error, client), (time.perf_counter() - start) * 1000)
    elapsed = (time.perf_counter() - start) * 1000
    try:
        return SingleResult(
            dict(result["probabilities"]),
            None,
            elapsed,
            highlighted(text, result) if explain else "",
            answered_by(result),
        )
    except (KeyError, TypeError, ValueError):
        log.warning("%s: an answer without a prediction", "explanation" if explain else "classification")
        return SingleResult(None, unexpected_answer(client), elapsed)


def unexpected_answer(client: TorchServeClient) -> str:
    return (
        f"TorchServe answered, but not with a prediction: is '{client.model}' at "
        f"{client.endpoints.inference_url} this project's sentiment model?"
    )


def classify_one(client: TorchServeClient, text: str) -> SingleResult:
    return _one(client, text, explain=False)


def explain_one(client: TorchServeClient, text: str) -> SingleResult:
    """The prediction and its word attributions (TorchServe's /explanations API)."""
    return _one(client, text, explain=True)


def towards_positive(result: dict) -> list[tuple[dict, float]]:
    """Each attribution with its push towards *positive* (the server scores towards the predicted label)."""
    sign = 1.0 if result["label"] == "positive" else -1.0
    return [(a, sign * float(a["score"])) for a in result.get("attributions", [])]


def highlighted(text: str, result: dict, top: int = 5) -> str:
    """The review as HTML: green words push towards positive, red towards negative, the stronger the
    darker; every piece of the review is escaped. Then the strongest words of each side."""
    pushes = towards_positive(result)
    strongest = max((abs(p) for _, p in pushes), default=0.0) or 1.0
    parts, cursor = [], 0
    for attribution, push in sorted(pushes, key=lambda item: item[0]["start"]):
        start, end = attribution["start"], attribution["end"]
        parts.append(html.escape(text[cursor:start]))
        alpha = min(1.0, abs(push) / strongest) * 0.85
        colour = f"rgba(22, 163, 74, {alpha:.2f})" if push > 0 else f"rgba(220, 38, 38, {alpha:.2f})"
        parts.append(
            f'<span class="word" style="background:{colour}" title="{push:+.3f}" data-push="{push:+.6e}">'
            f"{html.escape(text[start:end])}</span>"
        )
        cursor = end
    parts.append(html.escape(text[cursor:]))
    ranked = sorted(pushes, key=lambda item: item[1])
    negative = [f"{html.escape(a['word'])} ({p:+.2f})" for a, p in ranked[:top] if p < 0]
    positive = [f"{html.escape(a['word'])} ({p:+.2f})" for a, p in reversed(ranked[-top:]) if p > 0]
    note = "<p class='note'>Words cut by truncation were not scored.</p>" if result.get("truncated") else ""
    return (
        f"<div class='explained'>{''.join(parts)}</div>"
        f"<p><span class='key positive'>pushes positive</span> {', '.join(positive) or 'none'}<br>"
        f"<span class='key negative'>pushes negative</span> {', '.join(negative) or 'none'}</p>{note}"
    )


def lines_of(text: str) -> list[str]:
    """One review per non-blank line."""
    return [line.strip() for line in (text or "").splitlines() if line.strip()]


def csv_rows(path: str | Path) -> tuple[list[str], list[dict[str, str]]]:
    """Header and rows of an uploaded CSV (the CLI's reader); TableError says in words what is wrong."""
    return tables.read_csv(path)


def guess_text_column(columns: list[str]) -> str | None:
    """The uploaded file's review column: a known name, else the first column."""
    return tables.guess_text_column(columns) or (columns[0] if columns else None)


@dataclass(frozen=True)
class BatchRow:
    text: str
    label: str
    score: float | None
    positive: float | None
    error: str


TABLE_HEADERS = ["#", "review", "label", "score", "error"]


def classify_many(
    client: TorchServeClient,
    texts: list[str],
    concurrency: int,
    progress: Callable[[int, int], None] | None = None,
) -> list[BatchRow]:
    """All texts, several requests in flight (TorchServe batches them); rows in input order.
    `progress(done, total)` is called from this thread as answers arrive."""
    rows: list[BatchRow | None] = [None] * len(texts)
    for done, (i, result) in enumerate(iter_predictions(client, texts, concurrency), start=1):
        rows[i] = _row(texts[i], result, client)
        if progress:
            progress(done, len(texts))
    failed = sum(bool(row and row.error) for row in rows)
    if failed:
        log.warning("batch of %d reviews: %d refused", len(texts), failed)
    return rows  # type: ignore[return-value]


def _row(text: str, result: dict, client: TorchServeClient) -> BatchRow:
    if "error" not in result:
        try:
            return BatchRow(text, result["label"], result["score"], result["probabilities"].get("positive"), "")
        except (KeyError, TypeError, AttributeError):
            return BatchRow(text, "", None, None, unexpected_answer(client))
    error = result["error"]
    if error.get("code") is None:  # no HTTP answer at all: say why in the same words as elsewhere
        message = (
            failure_message(requests.ConnectionError(), client)
            if error.get("type") == "ConnectionError"
            else error.get("message", "")
        )
    else:
        message = f"HTTP {error['code']}: {error.get('message', '')}"
    return BatchRow(text, "", None, None, message)


def table(rows: Iterable[BatchRow]) -> list[list[object]]:
    """The on-page table: a preview of each review, its label and the label's probability."""
    out = []
    for n, row in enumerate(rows, start=1):
        preview = row.text if len(row.text) <= PREVIEW_CHARS else row.text[: PREVIEW_CHARS - 1] + "…"
        out.append([n, preview, row.label, round(row.score, 4) if row.score is not None else None, row.error])
    return out


def results_csv(rows: Iterable[BatchRow], extra: list[dict[str, str]] | None = None) -> str:
    """The download: every input column (for a CSV upload) or the text, then the prediction."""
    rows = list(rows)
    buffer = io.StringIO()
    tables.write_csv(
        buffer,
        extra or [{"text": row.text} for row in rows],
        [tables.Verdict(row.label, row.score, row.positive, row.error) for row in rows],
    )
    return buffer.getvalue()


def server_state(client: TorchServeClient) -> tuple[bool, str]:
    """(ready, one line for the page): model, version, workers READY, batch settings."""
    try:
        description = client.describe()[0]
    except requests.ConnectionError as error:
        return _inference_only_state(client, error)
    except (ApiError, requests.RequestException) as error:
        return False, failure_message(error, client)
    except (IndexError, KeyError, TypeError):  # a 200 that describes no model
        return False, f"TorchServe did not describe the model '{client.model}': is it registered?"
    workers = description.get("workers", [])
    ready = ready_count(description)
    where = "GPU" if any(w.get("gpu") for w in workers) else "CPU"
    line = (
        f"Model **{description.get('modelName')}** version {description.get('modelVersion')}: "
        f"**{ready} of {len(workers)}** workers ready on {where}; batches of up to {description.get('batchSize')} "
        f"reviews, gathered for at most {description.get('maxBatchDelay')} ms."
    )
    if not ready:
        line += " The model is still loading: predictions will fail until a worker is ready."
    return ready > 0, line + _other_versions(client, description.get("modelVersion"))


def _inference_only_state(client: TorchServeClient, error: requests.ConnectionError) -> tuple[bool, str]:
    """The state where only the inference API is reachable (on Kubernetes the Service offers no
    management API): TorchServe's /ping, without the workers or the version."""
    try:
        status = client.request("GET", "inference", "/ping").json().get("status")
    except (requests.RequestException, ValueError, AttributeError):
        return False, failure_message(error, client)
    ready = status == "Healthy"
    return ready, (
        f"TorchServe at `{client.endpoints.inference_url}` says **{status}**. Its workers are not visible "
        "from here (no management API, as behind the Kubernetes Service); each answer names the model version."
    )


def _other_versions(client: TorchServeClient, default: str | None) -> str:
    """The versions registered besides the default (a rollout's previous one), or ""."""
    try:
        others = [d for d in client.versions() if d.get("modelVersion") != default]
    except (ApiError, requests.RequestException, TypeError):
        return ""
    if not others:
        return ""
    listed = ", ".join(f"{d.get('modelVersion')} ({ready_count(d)} workers ready)" for d in others)
    return f" Also registered, for rollback: {listed}."


class ResultFiles:
    """The batch tab's downloads, which hold review text: one folder per browser session, a
    unique name per file (two users never share or overwrite one), each deleted `ttl_s` after it
    is written, and a session's folder deleted when the session ends."""

    def __init__(self, root: Path, ttl_s: float):
        self.root, self.ttl_s = root, ttl_s

    def folder(self, session: str | None) -> Path:
        # The session id comes from the browser: hashed, so it can never name another path.
        return self.root / hashlib.sha256((session or "no-session").encode()).hexdigest()[:24]

    def write(self, session: str | None, text: str) -> Path:
        folder = self.folder(session)
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix="sentiment-", suffix=".csv", dir=folder)
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
        timer = threading.Timer(self.ttl_s, Path(name).unlink, kwargs={"missing_ok": True})
        timer.daemon = True
        timer.start()
        return Path(name)

    def end_session(self, session: str | None) -> None:
        shutil.rmtree(self.folder(session), ignore_errors=True)
