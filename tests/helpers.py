"""Test helpers: tiny models made on the fly (training/tiny_model.py), TorchServe's real Context for handler tests, and
checks of the server's answers and metrics."""

from __future__ import annotations

import io
import json
import logging
import re
from http.server import BaseHTTPRequestHandler
from importlib import resources
from pathlib import Path

import pytest


def handler_context(
    model_dir: Path, handler_config: dict | None = None, yaml_extra: dict | None = None, model_name: str = "sentiment"
):
    """TorchServe's own Context, as its worker builds it (initialize-time part)."""
    from ts.context import Context
    from ts.metrics.metric_cache_yaml_impl import MetricsCacheYamlImpl

    metrics = MetricsCacheYamlImpl(str(resources.files("ts") / "configs" / "metrics.yaml"))
    metrics.initialize_cache()
    yaml_config = {"handler": handler_config or {}, **(yaml_extra or {})}
    return Context(
        model_name, str(model_dir), {"model": {}}, 8, None, "0.12.0", metrics=metrics, model_yaml_config=yaml_config
    )


def start_batch(context, headers: list[dict]) -> None:
    """Per-request part of the context for one batch: ids and request headers."""
    from ts.context import RequestProcessor

    context.request_ids = {i: f"req-{i}" for i in range(len(headers))}
    context.request_processor = [RequestProcessor(h) for h in headers]
    context.metrics.request_ids = context.request_ids


class LogCapture:
    """Everything logged while active, as one string (to prove review text is not logged)."""

    def __enter__(self) -> LogCapture:
        self.buffer = io.StringIO()
        self.handler = logging.StreamHandler(self.buffer)
        logging.getLogger().addHandler(self.handler)
        logging.getLogger().setLevel(logging.DEBUG)
        return self

    def __exit__(self, *exc) -> None:
        logging.getLogger().removeHandler(self.handler)

    @property
    def text(self) -> str:
        return self.buffer.getvalue()


class JsonHandler(BaseHTTPRequestHandler):
    """Base of the tests' stand-in HTTP servers: quiet, answers JSON."""

    def log_message(self, *args) -> None:
        pass

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


# What a server's answer adds to the core's: the model and the version that produced it.
ANSWERED_BY = {"model", "model_version"}


def check_prediction(body: dict) -> None:
    """`body` is exactly a prediction: a label, its score, and probabilities summing to 1; from a
    server, also the model and version that answered (both or neither)."""
    assert set(body) - ANSWERED_BY == {"label", "score", "probabilities"}
    assert set(body) >= ANSWERED_BY or not ANSWERED_BY & set(body)
    assert set(body["probabilities"]) == {"negative", "positive"}
    assert body["label"] in ("negative", "positive")
    assert body["score"] == pytest.approx(body["probabilities"][body["label"]])
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)


def histogram(metrics_text: str, name: str) -> dict[str, float]:
    """Bucket counts, _count and _sum of one Prometheus histogram of the handler."""
    values = {}
    for line in metrics_text.splitlines():
        match = re.match(rf'{name}_(bucket|count|sum)\{{.*?(?:le="([^"]+)")?.*\}} ([\d.eE+-]+)$', line)
        if match:
            kind, le, value = match.groups()
            values[f"le={le}" if kind == "bucket" else kind] = float(value)
    return values


def send_at_once(client, payloads: list[str]) -> list[tuple[int, dict]]:
    """Each review predicted on its own thread, all released together (so they share batches):
    (200, answer) or (the error's status, its JSON body), in input order."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from review_sentiment.client.rest import ApiError

    barrier = threading.Barrier(len(payloads))

    def send(text: str) -> tuple[int, dict]:
        barrier.wait()
        try:
            return 200, client.predict(text)
        except ApiError as err:
            return err.status, err.body

    with ThreadPoolExecutor(len(payloads)) as pool:
        return list(pool.map(send, payloads))
