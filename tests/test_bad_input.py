"""Awkward and hostile requests against a real TorchServe (the session `server`, max_chars 2000):
each gets a prediction or a 4xx with a JSON message, never a 5xx; no worker restarts; and in a
concurrent mix the bad requests fail alone while the good ones in the same batches are answered."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from reliability.inputs import PREDICTION, Case, cases
from review_sentiment.client.rest import ApiError, TorchServeClient
from tests.conftest import TEST_MODEL_CONFIG

pytestmark = pytest.mark.serving

MAX_CHARS = TEST_MODEL_CONFIG["handler"]["max_chars"]
CASES = cases(MAX_CHARS)


def worker_identities(client: TorchServeClient) -> set[tuple]:
    return {(w["id"], w["pid"], w["startTime"]) for w in client.describe()[0]["workers"]}


@pytest.fixture(scope="module")
def workers_before(server) -> tuple[set[tuple], int]:
    """The workers, and how far the frontend's log went, before this module's first request."""
    client = TorchServeClient.for_run_dir(server.run_dir)
    return worker_identities(client), (server.log_dir / "ts_log.log").stat().st_size


def send(client: TorchServeClient, case: Case) -> requests.Response:
    headers = {"Content-Type": case.content_type} if case.content_type else {}
    return client.request("POST", "inference", "/predictions/sentiment", data=case.body, headers=headers)


def assert_answer(client: TorchServeClient, case: Case, response: requests.Response) -> None:
    if case.expect == PREDICTION:
        assert response.status_code == 200, (case.name, response.status_code, response.text[:200])
        body = response.json()
        assert body["label"] in ("negative", "positive")
        assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-4)
        return
    assert response.status_code == case.expect, (case.name, response.status_code, response.text[:200])
    if case.frontend:
        # TorchServe's frontend refuses the body itself with an empty 413; the client layer
        # (used by the CLI and the UI) turns it into a message.
        with pytest.raises(ApiError) as caught:
            client._checked(response)
        assert caught.value.body["type"] == "RequestTooLarge" and "max_request_size" in str(caught.value)
    else:
        body = response.json()
        assert body["code"] == case.expect and body["type"] and body["message"]


def test_there_are_at_least_40_cases():
    assert len(CASES) >= 40 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gets_a_prediction_or_a_4xx(client, workers_before, case):
    assert_answer(client, case, send(client, case))


def test_a_concurrent_mix_fails_only_the_bad_ones(client, workers_before):
    """Every light case, each beside good reviews, sent at once: they share batches (batchSize 8,
    maxBatchDelay 300 ms), and each still gets its own answer."""
    light = [c for c in CASES if not c.heavy]
    good = [Case(f"good-{i}", f"Review {i}: works well".encode(), "text/plain", PREDICTION) for i in range(len(light))]
    mixed = [case for pair in zip(light, good, strict=True) for case in pair]
    barrier = threading.Barrier(len(mixed))

    def one(case: Case) -> requests.Response:
        barrier.wait()
        return send(client, case)

    with ThreadPoolExecutor(len(mixed)) as pool:
        responses = list(pool.map(one, mixed))
    for case, response in zip(mixed, responses, strict=True):
        assert_answer(client, case, response)


def test_no_worker_restarted_and_still_healthy(client, workers_before, server):
    identities, log_offset = workers_before
    assert worker_identities(client) == identities
    assert client.ping() == {"status": "Healthy"}
    with (server.log_dir / "ts_log.log").open("rb") as log:
        log.seek(log_offset)
        since = log.read().decode(errors="replace")
    assert "Worker disconnected" not in since and "Retry worker" not in since
