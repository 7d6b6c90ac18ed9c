"""The clients' retry policy (client/retry.py) against a scripted stand-in for TorchServe's
answers: a lost batch's 500/507 is sent again, the restart's 503 after it too, a fresh 503 (load
shedding) and the handler's 4xx never, and the retries are bounded."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer

import pytest

from review_sentiment.client.rest import ApiError, TorchServeClient
from review_sentiment.client.retry import NO_WORKER
from review_sentiment.endpoints import Endpoints
from tests.helpers import JsonHandler

PREDICTION = (200, {"label": "positive", "score": 0.9, "probabilities": {"negative": 0.1, "positive": 0.9}})
DIED = (500, {"code": 500, "type": "InternalServerException", "message": "Worker died."})
DIED_507 = (507, {"code": 507, "type": "InternalServerException", "message": "Worker died."})
NO_WORKER_503 = (503, {"code": 503, "type": "ServiceUnavailableException", "message": f"Model {NO_WORKER}"})
EMPTY = (400, {"code": 400, "type": "EmptyText", "message": "review text is empty"})


class Scripted:
    """Answers POSTs from a script, then the last answer forever; counts them."""

    def __init__(self):
        self.script: list[tuple[int, dict]] = []
        self.posts = 0
        scripted = self

        class Handler(JsonHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status, body = scripted.script[min(scripted.posts, len(scripted.script) - 1)]
                scripted.posts += 1
                self._answer(status, body)

            def do_GET(self) -> None:  # the management call that explains a 503: no such model
                self._answer(404, {"code": 404, "type": "ModelNotFoundException", "message": "none"})

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        port = self.httpd.server_address[1]
        self.endpoints = Endpoints(inference_port=port, management_port=port)


@pytest.fixture
def server() -> Iterator[Scripted]:
    scripted = Scripted()
    yield scripted
    scripted.httpd.shutdown()
    scripted.httpd.server_close()


@pytest.fixture
def client(server, tmp_path) -> TorchServeClient:
    return TorchServeClient(server.endpoints, tmp_path / "no-keys.json", retry_delays=(0.01, 0.01, 0.01))


@pytest.mark.parametrize(
    "script",
    [[DIED, PREDICTION], [DIED_507, PREDICTION], [DIED, NO_WORKER_503, NO_WORKER_503, PREDICTION]],
    ids=["500", "507", "500-then-restart"],
)
def test_a_lost_batch_is_sent_again(server, client, script):
    server.script = script
    assert client.predict("fine")["label"] == "positive"
    assert server.posts == len(script)


@pytest.mark.parametrize("script", [[NO_WORKER_503, PREDICTION], [EMPTY, PREDICTION]], ids=["fresh-503", "4xx"])
def test_refusals_are_not_retried(server, client, script):
    server.script = script
    with pytest.raises(ApiError):
        client.predict("fine")
    assert server.posts == 1


def test_retries_are_bounded(server, client):
    server.script = [DIED]
    with pytest.raises(ApiError) as caught:
        client.predict("fine")
    assert caught.value.status == 500 and server.posts == 4  # the request and 3 retries


def test_a_raw_client_sends_once(server, tmp_path):
    server.script = [DIED, PREDICTION]
    raw = TorchServeClient(server.endpoints, tmp_path / "no-keys.json", retry_delays=())
    with pytest.raises(ApiError):
        raw.predict("fine")
    assert server.posts == 1


def test_grpc_client_retries_a_lost_batch_too(tmp_path):
    """The same policy over gRPC, where TorchServe 0.12 answers a lost batch and "has no worker"
    both with INTERNAL (client/refusals.py tells them apart by its words)."""
    from concurrent import futures

    import grpc

    from review_sentiment.client.grpc_client import GrpcClient, GrpcPredictionError
    from review_sentiment.client.grpc_stubs import inference_pb2, inference_pb2_grpc

    script: list[tuple[grpc.StatusCode, str] | None] = []
    calls = []

    class Servicer(inference_pb2_grpc.InferenceAPIsServiceServicer):
        def Predictions(self, request, context):  # noqa: N802 (the proto's name)
            answer = script[min(len(calls), len(script) - 1)]
            calls.append(request.model_name)
            if answer is not None:
                context.abort(*answer)
            return inference_pb2.PredictionResponse(prediction=json.dumps(PREDICTION[1]).encode())

    grpc_server = grpc.server(futures.ThreadPoolExecutor(4))
    inference_pb2_grpc.add_InferenceAPIsServiceServicer_to_server(Servicer(), grpc_server)
    port = grpc_server.add_insecure_port("127.0.0.1:0")
    grpc_server.start()
    try:
        endpoints = Endpoints(grpc_inference_port=port)
        with GrpcClient(endpoints, tmp_path / "no-keys.json", retry_delays=(0.01, 0.01)) as client:
            # TorchServe 0.12's code for "has no worker", and UNAVAILABLE should a later one send it.
            for no_worker in (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE):
                script[:] = [(grpc.StatusCode.INTERNAL, "Worker died."), (no_worker, NO_WORKER), None]
                assert client.predict("fine")["label"] == "positive" and len(calls) == 3
                calls.clear()
                script[:] = [(no_worker, NO_WORKER), None]  # fresh: load shedding
                with pytest.raises(GrpcPredictionError):
                    client.predict("fine")
                assert len(calls) == 1
                calls.clear()
            script[:] = [(grpc.StatusCode.INTERNAL, "Worker died.")]
            with pytest.raises(GrpcPredictionError):
                client.predict("fine")
            assert len(calls) == 3  # bounded: the request and 2 retries
    finally:
        grpc_server.stop(0)


def test_a_connection_reset_while_sending_a_huge_body_is_a_413_in_words(tmp_path):
    """Far over max_request_size the frontend may close the connection while the body is still
    being sent (curl saw it with 10 MB; this machine's TorchServe answered 413 to 50 MB): the
    client says RequestTooLarge either way. A reset on a small body stays a connection error."""
    import socket
    import struct

    import requests

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)

    def reset_every_connection() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(1024)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # RST

    threading.Thread(target=reset_every_connection, daemon=True).start()
    port = listener.getsockname()[1]
    client = TorchServeClient(Endpoints(inference_port=port), tmp_path / "no-keys.json", retry_delays=())
    try:
        with pytest.raises(ApiError) as caught:
            client.predict("x" * (10 * 2**20))
        assert caught.value.status == 413 and caught.value.body["type"] == "RequestTooLarge"
        with pytest.raises(requests.ConnectionError):
            client.predict("short review")
    finally:
        listener.close()
