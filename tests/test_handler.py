"""The TorchServe handler with TorchServe's own Context, without Java (as TorchServe's unit
tests do): order, per-request errors in a mixed batch, metrics, and no review text in logs."""

from __future__ import annotations

import json
import logging

import pytest
from ts.metrics.metric_type_enum import MetricTypes

from handler.sentiment_handler import SentimentHandler
from tests.helpers import LogCapture, handler_context, start_batch

SECRET = "zanzibar-marker-review-4711"


@pytest.fixture(scope="module")
def handler(model_dir):
    h = SentimentHandler()
    h.initialize(handler_context(model_dir, {"max_length": 32, "max_chars": 300, "torch_threads": 1}))
    return h


@pytest.fixture
def batch(handler, model_dir):
    context = handler_context(model_dir, {"max_length": 32, "max_chars": 300})

    def run(rows, content_types):
        start_batch(context, [{"Content-Type": ct} if ct else {} for ct in content_types])
        return handler.handle(rows, context), context

    return run


def test_initialize_reads_handler_settings(handler):
    assert handler.initialized
    assert handler.classifier.settings.max_length == 32
    assert str(handler.device) == "cpu"


def test_results_in_request_order(batch):
    texts = [f"review number {i} was {'great' if i % 2 else 'bad'}" for i in range(6)]
    responses, context = batch([{"body": t} for t in texts], ["text/plain"] * 6)
    assert len(responses) == 6
    for i, response in enumerate(responses):
        body = json.loads(response)
        assert set(body) == {"label", "score", "probabilities", "model", "model_version"}
        # The name it is registered under; the version from the manifest (this test context has none).
        assert (body["model"], body["model_version"]) == ("sentiment", None)
        assert context.get_response_status(i)[0] == 200
    # Same text, same place: each answer matches the text classified alone.
    alone, _ = batch([{"body": texts[3]}], ["text/plain"])
    assert json.loads(alone[0])["probabilities"] == pytest.approx(json.loads(responses[3])["probabilities"])


def test_mixed_batch_fails_only_the_bad_requests(batch):
    rows = [
        {"body": "Lovely scent"},
        {"body": ""},
        {"body": {"text": "Dried out my skin"}},
        {"body": b"\xff\xfe"},
        {"body": {"txt": "typo in key"}},
        {"body": "y" * 301},
        {"data": b'{"text": "sent over gRPC"}'},
    ]
    types = ["text/plain", "text/plain", "application/json", None, "application/json", "text/plain", None]
    responses, context = batch(rows, types)
    codes = [context.get_response_status(i)[0] for i in range(len(rows))]
    assert codes == [200, 400, 200, 400, 400, 413, 200]
    bodies = [json.loads(r) for r in responses]
    assert bodies[1]["type"] == "EmptyText" and bodies[3]["type"] == "NotUtf8"
    assert bodies[4]["type"] == "MalformedJson" and bodies[5]["type"] == "TextTooLong"
    assert all("label" in bodies[i] for i in (0, 2, 6))
    assert all(context.get_response_content_type(i) == "application/json" for i in range(len(rows)))


@pytest.mark.parametrize("name", ["content-type", "CONTENT-TYPE", "Content-type", "cOnTeNt-TyPe"])
def test_content_type_header_in_any_spelling(handler, model_dir, name):
    """TorchServe passes header names as the client spelled them; HTTP names are case-insensitive.
    Broken JSON declared as JSON is a 400 in every spelling, never classified as raw text."""
    context = handler_context(model_dir)
    rows = [{"body": b'{"text": broken'}, {"body": b'{"text": "fine"}'}, {"body": b"plain words"}]
    start_batch(context, [{name: "application/json"}, {name: "application/json"}, {name: "text/plain"}])
    responses = [json.loads(r) for r in handler.handle(rows, context)]
    assert context.get_response_status(0)[0] == 400 and responses[0]["type"] == "MalformedJson"
    assert "label" in responses[1] and "label" in responses[2]


def test_only_the_frontends_explain_flag_counts(handler, model_dir):
    """The frontend adds its own lowercase `explain`; a client's `Explain: True` on /predictions
    (a header of another spelling) must not buy an explanation."""
    context = handler_context(model_dir)
    start_batch(context, [{"Explain": "True", "explain": "False"}, {"explain": "True"}])
    responses = [json.loads(r) for r in handler.handle([{"body": "nice"}, {"body": "nice"}], context)]
    assert "attributions" not in responses[0] and "attributions" in responses[1]


def test_batch_metrics_are_recorded(batch):
    _, context = batch([{"body": "one"}, {"body": "two two"}, {"body": ""}], ["text/plain"] * 3)
    for name in ("BatchSize", "TokensPerBatch", "PaddedTokensPerBatch", "PreprocessTime", "InferenceTime"):
        context.metrics.get_metric(name, MetricTypes.HISTOGRAM)  # raises if never recorded
    context.metrics.get_metric("RejectedRequests", MetricTypes.COUNTER)


def test_review_text_never_logged(batch, model_dir):
    with LogCapture() as logs:
        batch([{"body": SECRET}, {"body": {"text": SECRET}}, {"body": SECRET * 100}], ["text/plain"] * 3)
        # Positive controls: the capture does see what the handler logs, and a review if one were logged.
        SentimentHandler().initialize(handler_context(model_dir, {"max_length": 32, "warmup": False}))
        logging.getLogger("handler.sentiment_handler").warning("control %s", "C0NTR0L")
    assert "sentiment model ready on cpu" in logs.text and "control C0NTR0L" in logs.text
    assert SECRET not in logs.text


def _service_batch(bodies: list[str]) -> list[dict]:
    """A batch as TorchServe's worker receives it from the Java frontend."""
    return [
        {
            "requestId": f"req-{i}".encode(),
            "parameters": [{"name": "body", "contentType": "text/plain", "value": body}],
            "headers": [{"name": b"Content-Type", "value": b"text/plain"}],
        }
        for i, body in enumerate(bodies)
    ]


def test_a_wrong_result_count_fails_the_whole_batch_with_503(handler, model_dir, monkeypatch):
    """TorchServe's own worker code (ts.service.Service) around the handler: one answer per
    request passes; a handler returning one answer too few would fail the batch with 503."""
    import struct

    from ts.service import Service

    metrics = handler_context(model_dir).metrics
    service = Service("sentiment", str(model_dir), {"model": {}}, handler.handle, None, 8, metrics_cache=metrics)
    service.cl_socket = None  # the worker sets its socket here; predict only passes it along
    status = lambda message: struct.unpack("!i", bytes(message[:4]))[0]  # noqa: E731
    assert status(service.predict(_service_batch(["good", "", "bad"]))) == 200
    original = SentimentHandler.postprocess
    monkeypatch.setattr(SentimentHandler, "postprocess", lambda self, outcomes: original(self, outcomes)[:-1])
    assert status(service.predict(_service_batch(["good", "bad"]))) == 503
