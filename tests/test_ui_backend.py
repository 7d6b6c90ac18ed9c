"""The page's logic without Gradio or a server: result files, the download CSV, and answers that
are not what a prediction looks like (each a message in words, never an exception)."""

from __future__ import annotations

import csv
import http.server
import io
import threading
from dataclasses import replace

import pytest

from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.waiting import wait_until
from tests.helpers import JsonHandler
from ui import backend


@pytest.fixture
def client(tmp_path) -> TorchServeClient:
    return TorchServeClient(Endpoints(), tmp_path / "no-key-file.json")


def test_result_files_are_unique_per_session_and_expire(tmp_path):
    files = backend.ResultFiles(tmp_path, ttl_s=1.0)
    barrier = threading.Barrier(8)
    written: list = [None] * 8

    def write(i: int) -> None:
        barrier.wait()
        written[i] = files.write(f"session-{i % 2}", f"text\nreview of writer {i}\n")

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(written)) == 8, "two batches shared a file"
    for i, path in enumerate(written):
        assert path.read_text() == f"text\nreview of writer {i}\n"
        assert path.parent == files.folder(f"session-{i % 2}")
    assert files.folder("session-0") != files.folder("session-1")
    gone = wait_until(lambda: not any(p.exists() for p in written), 10, interval_s=0.1)
    assert gone, "result files outlived their time"


def test_a_session_end_deletes_its_files_only(tmp_path):
    files = backend.ResultFiles(tmp_path, ttl_s=600)
    mine, theirs = files.write("mine", "a"), files.write("theirs", "b")
    files.end_session("mine")
    assert not mine.exists() and theirs.exists()


def test_a_session_id_cannot_name_another_path(tmp_path):
    files = backend.ResultFiles(tmp_path / "root", ttl_s=600)
    path = files.write("../../outside", "x")
    assert path.resolve().is_relative_to((tmp_path / "root").resolve())


def _rows(n: int) -> list[backend.BatchRow]:
    return [backend.BatchRow(f"review {i}", "positive", 0.9, 0.9, "") for i in range(n)]


def test_download_keeps_ragged_and_clashing_columns():
    sources = [{"id": "1", "label": "gold-positive"}, {"id": "2", "label": "gold-negative", "extra": "x"}]
    rows = list(csv.DictReader(io.StringIO(backend.results_csv(_rows(2), sources))))
    assert list(rows[0]) == ["id", "input_label", "extra", "label", "score", "p_positive", "error"]
    assert rows[0]["input_label"] == "gold-positive" and rows[0]["label"] == "positive"
    assert rows[1]["extra"] == "x" and rows[0]["extra"] == ""


def test_answers_without_a_prediction_are_explained(client, monkeypatch):
    monkeypatch.setattr(client, "predict", lambda text: {"unexpected": True})
    result = backend.classify_one(client, "fine")
    assert result.probabilities is None and "not with a prediction" in result.error
    row = backend._row("fine", {"label": "positive"}, client)
    assert row.error.startswith("TorchServe answered, but not with a prediction")
    monkeypatch.setattr(client, "describe", lambda: [])
    ready, line = backend.server_state(client)
    assert not ready and "did not describe the model 'sentiment'" in line


class _PingOnly(JsonHandler):
    """An inference API alone, as a Kubernetes Service offers it (no management API)."""

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._answer(200, {"status": "Healthy"})


def test_state_without_a_management_api_comes_from_ping(tmp_path):
    inference = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PingOnly)
    threading.Thread(target=inference.serve_forever, daemon=True).start()
    closed = Endpoints.free()  # nothing listens on its management port
    endpoints = replace(closed, inference_port=inference.server_address[1])
    try:
        ready, line = backend.server_state(TorchServeClient(endpoints, tmp_path / "no-key-file.json"))
    finally:
        inference.shutdown()
    assert ready and "says **Healthy**" in line and "no management API" in line


def test_answers_name_the_model_version():
    assert backend.answered_by({"model": "sentiment", "model_version": "v2"}) == "model **sentiment** version **v2**"
    assert backend.answered_by({"label": "positive"}) == ""
