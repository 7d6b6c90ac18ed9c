"""Against a real TorchServe started by the `server` fixture (token auth on, tiny model)."""

from __future__ import annotations

import csv
import json

import psutil
import pytest
import requests

from review_sentiment import cli, paths
from review_sentiment.client.grpc_client import GrpcClient, GrpcPredictionError
from review_sentiment.client.keys import KeyFile, bearer
from review_sentiment.client.rest import ApiError, TorchServeClient
from review_sentiment.core.errors import ErrorKind
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.sandbox import start
from review_sentiment.status_codes import GRPC_CODE, HTTP_STATUS
from tests.helpers import check_prediction, histogram, send_at_once

pytestmark = pytest.mark.serving

MARKER = "quokka-privacy-marker-9931"


def test_rest_text_and_json(client):
    check_prediction(client.predict("The shade is perfect and it lasts all day."))
    check_prediction(client.predict_json({"text": "Broke my skin out, returning it."}))
    # The same review gives the same answer whichever way it is sent.
    text = "Smells lovely but feels greasy"
    assert client.predict(text)["probabilities"] == pytest.approx(client.predict_json({"text": text})["probabilities"])


@pytest.mark.parametrize(
    ("data", "content_type", "status", "kind"),
    [
        (b"", "text/plain", 400, "EmptyText"),
        (b"   ", "text/plain", 400, "EmptyText"),
        (b"\xff\xfe\xfa", "application/octet-stream", 400, "NotUtf8"),
        (b'{"review": "wrong key"}', "application/json", 400, "MalformedJson"),
        (b"{broken json", "application/json", 400, "MalformedJson"),
        (b"x" * 2001, "text/plain", 413, "TextTooLong"),
    ],
)
@pytest.mark.parametrize("api_path", ["predictions", "explanations"])
def test_bad_requests_get_4xx_json(client, api_path, data, content_type, status, kind):
    response = client.request(
        "POST", "inference", f"/{api_path}/sentiment", data=data, headers={"Content-Type": content_type}
    )
    assert response.status_code == status
    body = response.json()
    assert body["type"] == kind and body["code"] == status and body["message"]


@pytest.mark.parametrize("spell", [str.lower, str.upper, lambda name: name.swapcase()], ids=["lower", "upper", "mixed"])
def test_header_names_in_any_spelling(server, spell):
    """HTTP header names are case-insensitive; TorchServe passes them on as the client wrote them."""
    endpoints = Endpoints.load(server.run_dir)
    key = server.keys()["inference"]
    url = f"{endpoints.inference_url}/predictions/sentiment"

    def post(body: bytes, content_type: str) -> requests.Response:
        headers = {spell("Authorization"): f"Bearer {key}", spell("Content-Type"): content_type}
        return requests.post(url, data=body, headers=headers, timeout=30)

    broken = post(b'{"text": broken', "application/json")
    assert broken.status_code == 400 and broken.json()["type"] == "MalformedJson", broken.text
    check_prediction(post(b'{"text": "Lovely colour"}', "application/json").json())
    # Declared text/plain, a body starting with "{" is a review, not JSON.
    assert post(b"{not json} but a review", "text/plain").status_code == 200


@pytest.mark.parametrize("size", [2**20 + 1, 10 * 2**20], ids=["1MiB", "10MiB"])
def test_oversize_bodies_are_refused_in_words(client, size):
    """TorchServe answers an empty 413 (here to both sizes; a reset far over the limit is covered
    in test_retry.py); the client says it in words, as the CLI and the UI show it."""
    with pytest.raises(ApiError) as caught:
        client.predict("x" * size)
    assert caught.value.status == 413 and caught.value.body["type"] == "RequestTooLarge"
    assert "max_request_size (1 MiB by default)" in str(caught.value)


def test_batching_and_a_bad_request_fails_alone(client):
    """Concurrent requests are batched (batch size > 1 seen by the handler's metric); the bad
    ones in those batches fail alone and the server stays healthy."""
    before = histogram(client.metrics(), "BatchSize")
    texts = [f"Review {i}: {'love it' if i % 3 else 'hate it'}" for i in range(24)]
    bad = {5: "", 11: "   ", 17: "z" * 5000}
    payloads = [bad.get(i, t) for i, t in enumerate(texts)]
    results = send_at_once(client, payloads)
    for i, (status, body) in enumerate(results):
        if i in bad:
            assert 400 <= status < 500 and body["message"]
        else:
            assert status == 200
            check_prediction(body)
    assert client.ping() == {"status": "Healthy"}
    after = histogram(client.metrics(), "BatchSize")
    batches = after["count"] - before.get("count", 0)
    requests_in_batches = after["sum"] - before.get("sum", 0)
    assert requests_in_batches == len(payloads) - len(bad)
    assert batches < requests_in_batches, "no batch held more than one request"


def test_grpc_predictions(server, client):
    with GrpcClient.for_run_dir(server.run_dir) as grpc_client:
        text = "Great value for the price, my new favourite mascara"
        body = grpc_client.predict(text)
        check_prediction(body)
        assert body["probabilities"] == pytest.approx(client.predict(text)["probabilities"], abs=1e-5)
        with pytest.raises(GrpcPredictionError) as caught:
            grpc_client.predict("   ")
        assert "empty" in caught.value.details.lower() and caught.value.status == 400


def test_cli_scales_workers_up_and_down(server, client, capsys):
    run_dir = str(server.run_dir)
    assert cli.main(["--run-dir", run_dir, "scale", "2"]) == 0
    workers = client.describe()[0]["workers"]
    assert len(workers) == 2 and all(w["status"] == "READY" for w in workers)
    assert "2 workers" in capsys.readouterr().out
    check_prediction(client.predict("Still answering with two workers"))
    assert cli.main(["--run-dir", run_dir, "scale", "1"]) == 0
    assert len(client.describe()[0]["workers"]) == 1
    capsys.readouterr()
    assert cli.main(["--run-dir", run_dir, "describe"]) == 0
    lines = capsys.readouterr().out.splitlines()
    version = client.default_version()
    assert lines[0] == f"model sentiment: 1 version(s), default {version}"
    assert lines[1].startswith(f"* {version}") and "default  1 of 1 workers READY" in lines[1]
    assert cli.main(["--run-dir", run_dir, "describe", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["modelName"] == "sentiment"


def test_cli_predict_file(server, tmp_path, capsys):
    source = tmp_path / "reviews.csv"
    with source.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "text"])
        for i in range(12):
            writer.writerow([i, "" if i == 4 else f"Review {i}, really {'good' if i % 2 else 'bad'}"])
    output = tmp_path / "scored.csv"
    code = cli.main(["--run-dir", str(server.run_dir), "predict", "--file", str(source), "--output", str(output)])
    assert code == 1  # one review was refused
    rows = list(csv.DictReader(output.open()))
    assert [r["id"] for r in rows] == [str(i) for i in range(12)]
    assert rows[4]["error"] and not rows[4]["label"]
    assert all(r["label"] in ("negative", "positive") for i, r in enumerate(rows) if i != 4)
    assert list(rows[0]) == ["id", "text", "label", "score", "p_positive", "error"]  # the UI download's columns
    jsonl = tmp_path / "reviews.jsonl"
    jsonl.write_text("\n".join(json.dumps({"text": f"line {i}"}) for i in range(3)) + "\n")
    assert cli.main(["--run-dir", str(server.run_dir), "predict", "--file", str(jsonl)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.startswith("{")]
    assert len(lines) == 3 and all("label" in x["prediction"] for x in lines)


def test_prometheus_metrics_include_the_handlers(client):
    client.predict("metrics please")
    text = client.metrics()
    for name in ("BatchSize", "TokensPerBatch", "PaddedTokensPerBatch", "PreprocessTime", "InferenceTime"):
        assert histogram(text, name).get("count", 0) >= 1, name
    assert "ts_inference_requests_total" in text


def test_token_auth(server, client):
    endpoints = Endpoints.load(server.run_dir)
    predict_url = f"{endpoints.inference_url}/predictions/sentiment"
    # TorchServe 0.12 refuses a missing or wrong key with 400 InvalidKeyException, on every API.
    for refused in (
        requests.post(predict_url, data=b"no key", timeout=10),
        requests.get(f"{endpoints.inference_url}/ping", timeout=10),
        requests.get(f"{endpoints.management_url}/models", timeout=10),
        requests.post(predict_url, data=b"bad key", headers={"Authorization": "Bearer nope"}, timeout=10),
    ):
        assert refused.status_code == 400 and refused.json()["type"] == "InvalidKeyException"
        assert refused.status_code == HTTP_STATUS[ErrorKind.NOT_AUTHORIZED]
    keys = server.keys()
    ok = requests.post(
        predict_url, data=b"with key", headers={"Authorization": f"Bearer {keys['inference']}"}, timeout=10
    )
    assert ok.status_code == 200
    # The management key does not open the inference API.
    wrong = requests.post(predict_url, data=b"x", headers={"Authorization": f"Bearer {keys['management']}"}, timeout=10)
    assert wrong.status_code == 400
    # Registering a model version (the model API, on with auth on loopback) needs the management key.
    register_url = f"{endpoints.management_url}/models"
    for key in (None, keys["inference"]):
        refused = requests.post(register_url, params={"url": "other.mar"}, headers=bearer(key), timeout=10)
        assert refused.status_code == 400 and refused.json()["type"] == "InvalidKeyException"
    missing = requests.post(register_url, params={"url": "other.mar"}, headers=bearer(keys["management"]), timeout=10)
    assert missing.status_code == 404 and missing.json()["type"] == "ModelNotFoundException"


def test_grpc_refuses_a_missing_or_wrong_key_as_not_authorized(server):
    """TorchServe 0.12's gRPC frontend refuses a call without a valid key with PERMISSION_DENIED
    and the REST answer's words (docs/api.md's error table); the client reads it as NotAuthorized."""
    import grpc

    from review_sentiment.client.grpc_stubs import inference_pb2, inference_pb2_grpc

    endpoints = Endpoints.load(server.run_dir)
    request = inference_pb2.PredictionsRequest(model_name=paths.model_name(), input={"data": b"no key"})
    with grpc.insecure_channel(endpoints.grpc_target) as channel:
        stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)
        for metadata in ([], [("authorization", "Bearer nope")]):
            with pytest.raises(grpc.RpcError) as caught:
                stub.Predictions(request, metadata=metadata, timeout=30)
            code, details = caught.value.code(), caught.value.details()
            assert code == grpc.StatusCode.PERMISSION_DENIED and "Token Authorization failed" in details
            assert GrpcPredictionError(code, details).kind == ErrorKind.NOT_AUTHORIZED
            assert code.name == GRPC_CODE[ErrorKind.NOT_AUTHORIZED]


def test_torchserves_own_refusals_are_read_as_their_kinds(server):
    """What TorchServe 0.12 answers, over each transport, is what status_codes.py records, and
    each client reads it as the kind (no worker lost, so nothing is retried)."""
    with pytest.raises(ApiError) as caught:
        server.new_client(model="no-such-model").predict("x")
    assert caught.value.kind == ErrorKind.NOT_FOUND and caught.value.status == HTTP_STATUS[ErrorKind.NOT_FOUND]
    unknown = GrpcClient.for_run_dir(server.run_dir, model="no-such-model")
    with unknown, pytest.raises(GrpcPredictionError) as caught:
        unknown.predict("x")
    assert caught.value.kind == ErrorKind.NOT_FOUND and caught.value.code.name == GRPC_CODE[ErrorKind.NOT_FOUND]
    with GrpcClient.for_run_dir(server.run_dir) as grpc_client, pytest.raises(GrpcPredictionError) as caught:
        grpc_client.predict("x" * (2**20 + 1))  # over max_request_size
    too_large = ErrorKind.REQUEST_TOO_LARGE
    assert caught.value.kind == too_large and caught.value.code.name == GRPC_CODE[too_large], str(caught.value)
    client = server.new_client()
    client.scale(0)
    try:  # "has no worker": REST 503, which the REST client resolves; gRPC INTERNAL
        with pytest.raises(ApiError) as caught:
            client.predict("x")
        assert caught.value.kind == ErrorKind.NO_WORKER and caught.value.status == HTTP_STATUS[ErrorKind.NO_WORKER]
        with GrpcClient.for_run_dir(server.run_dir) as grpc_client, pytest.raises(GrpcPredictionError) as caught:
            grpc_client.predict("x")
        either = ErrorKind.QUEUE_FULL_OR_NO_WORKER
        assert caught.value.kind == either and caught.value.code.name == GRPC_CODE[either], str(caught.value)
    finally:
        client.scale(1)


def test_rotated_key_file_is_picked_up(server, client):
    client.predict("warm the client's key cache")
    old = client.keys.key("inference")
    # An operator rotates the inference key through the token API (with a key file of their own).
    operator = KeyFile(server.run_dir / "key_file.json")
    rotated = operator.renew("inference", Endpoints.load(server.run_dir).management_url)
    assert rotated.status_code == 200
    new = server.keys()["inference"]
    assert new != old
    check_prediction(client.predict("after rotation"))  # refused once, re-read, retried
    assert client.keys.key("inference") == new
    with GrpcClient.for_run_dir(server.run_dir) as grpc_client:
        grpc_client.keys._keys = {"inference": old}  # a gRPC client still holding the old key
        check_prediction(grpc_client.predict("gRPC after rotation"))


def test_expired_key_is_renewed_with_the_api_key(server, client):
    """A key the server refuses while the file still holds it (as after expiry): the client
    asks the token API for a new one, with the API key from the same file."""
    key_file = server.run_dir / "key_file.json"
    data = json.loads(key_file.read_text())
    data["inference"]["key"] = "expired1"
    key_file.write_text(json.dumps(data))
    fresh = TorchServeClient.for_run_dir(server.run_dir)
    check_prediction(fresh.predict("after expiry"))
    assert fresh.keys.key("inference") not in ("expired1", None)


def test_review_text_is_not_logged(server, client):
    client.predict(f"A review that must stay private: {MARKER}")
    client.request("POST", "inference", "/predictions/sentiment", data=f"{MARKER}" * 1000)
    for path in server.log_dir.rglob("*"):
        if path.is_file():
            assert MARKER not in path.read_text(errors="replace"), path.name


def test_auth_off_switch_and_clean_stop(tmp_path, model_store):
    """With auth off no key is needed; stop leaves no process and no unpacked model."""
    server = start(model_store / "sentiment.mar", tmp_path / "run", auth=False, timeout=180)
    try:
        assert not (server.run_dir / "key_file.json").exists() and server.keys() == {}
        url = f"{server.endpoints.inference_url}/predictions/sentiment"
        response = requests.post(url, data=b"no key needed", timeout=30)
        assert response.status_code == 200
        check_prediction(response.json())
        # Without keys nothing may register models: the model API stays off (405 is the switch).
        register = requests.post(f"{server.endpoints.management_url}/models", params={"url": "x.mar"}, timeout=10)
        assert register.status_code == 405 and register.json()["type"] == "MethodNotAllowedException"
        pid = server.frontend_pid
        family = [pid, *(c.pid for c in psutil.Process(pid).children(recursive=True))]
        assert len(family) >= 2  # the Java frontend and at least one Python worker
        assert server.worker_pids() and set(server.worker_pids()) <= set(family)
        assert any((server.process.tmp_dir / "models").iterdir())
    finally:
        assert server.stop()
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE for p in family)
    assert not server.process.tmp_dir.exists()
    assert not server.process.is_running()


def test_an_int8_worker_starts_and_answers(tmp_path, model_store, monkeypatch):
    """cpu_precision int8, set as a deployment would (the environment wins over the archive's
    model-config): the worker exports and quantizes the model through ONNX Runtime at start,
    then answers predictions, and explanations in fp32 torch."""
    monkeypatch.setenv("SENTIMENT_CPU_PRECISION", "int8")
    server = start(model_store / "sentiment.mar", tmp_path / "run", timeout=180)
    try:
        check_prediction(server.client.predict("The shade is perfect and it lasts all day."))
        explanation = server.client.explain("Smells lovely but feels greasy")
        assert explanation["label"] in ("negative", "positive") and explanation["attributions"]
        logs = "".join(p.read_text(errors="replace") for p in server.log_dir.rglob("*.log"))
        assert "cpu_precision='int8'" in logs
    finally:
        assert server.stop()
