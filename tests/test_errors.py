"""The one error vocabulary: every kind is raised somewhere and has its HTTP status and gRPC
code, and the clients read TorchServe's answers (the handler's and the frontend's own) as the
same kinds, over each transport."""

from __future__ import annotations

import ast

import grpc
import pytest

from review_sentiment import paths
from review_sentiment.client.grpc_client import GrpcPredictionError, _raise_if_error
from review_sentiment.client.many import error_result
from review_sentiment.client.refusals import MAX_REQUEST_SIZE, NO_WORKER, kind_of_answer, kind_of_grpc
from review_sentiment.client.rest import ApiError, TorchServeClient
from review_sentiment.core import errors
from review_sentiment.core.errors import ErrorKind, TextTooLong
from review_sentiment.endpoints import Endpoints
from review_sentiment.status_codes import GRPC_CODE, HTTP_STATUS, error_body

# TorchServe 0.12's gRPC answers: details are its message, then the exception's name; and the
# size of the request, which alone tells a reset over max_request_size (seen: tests/test_serving.py).
OVER = MAX_REQUEST_SIZE + 1
RESET = "Stream removed (RST_STREAM (Received RST_STREAM with error code 8))"
GRPC_ANSWERS = [
    ("PERMISSION_DENIED", "Token Authorization failed. Token either incorrect, expired, or not provided correctly",
     ErrorKind.NOT_AUTHORIZED, 10),
    ("INTERNAL", f'Model "sentiment" {NO_WORKER}. Please use scale workers API to add workers.\n'
     "InternalServerException.()", ErrorKind.QUEUE_FULL_OR_NO_WORKER, 10),
    ("INTERNAL", "Model not found: other\norg.pytorch.serve.archive.model.ModelNotFoundException",
     ErrorKind.NOT_FOUND, 10),
    ("INTERNAL", "Worker died.\norg.pytorch.serve.http.InternalServerException", ErrorKind.WORKER_LOST, 10),
    ("RESOURCE_EXHAUSTED", "Worker died.\norg.pytorch.serve.http.InternalServerException", ErrorKind.WORKER_LOST, 10),
    ("CANCELLED", RESET, ErrorKind.REQUEST_TOO_LARGE, OVER),
    ("CANCELLED", RESET, ErrorKind.SERVER_ERROR, 10),  # a small request's reset is not about its size
    ("INTERNAL", "Parameter model_name is required.\nBadRequestException.()", ErrorKind.BAD_REQUEST, 10),
    ("UNAVAILABLE", "failed to connect to all addresses", ErrorKind.SERVER_ERROR, 10),  # grpcio: no server there
    ("DEADLINE_EXCEEDED", "Deadline Exceeded", ErrorKind.SERVER_ERROR, 10),
]  # fmt: skip


def test_every_kind_has_an_http_status_and_a_grpc_code():
    assert set(HTTP_STATUS) == set(ErrorKind) == set(GRPC_CODE)
    assert all(hasattr(grpc.StatusCode, name) for name in GRPC_CODE.values())


@pytest.mark.parametrize(
    ("status", "body", "kind"),
    [
        (413, error_body(ErrorKind.TEXT_TOO_LONG, "too long"), ErrorKind.TEXT_TOO_LONG),
        (400, {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed."}, "NotAuthorized"),
        (503, {"code": 503, "message": "Model m has no worker to serve inference request."}, "QueueFullOrNoWorker"),
        (500, {"code": 500, "type": "InternalServerException", "message": "Worker died."}, "WorkerLost"),
        (507, "Worker died.", ErrorKind.WORKER_LOST),
        (413, "", ErrorKind.REQUEST_TOO_LARGE),
        (404, {"code": 404, "type": "ModelNotFoundException", "message": "Model not found"}, "NotFound"),
        (405, "", ErrorKind.BAD_REQUEST),
        (502, "", ErrorKind.SERVER_ERROR),
    ],
)
def test_answers_read_as_kinds(status, body, kind):
    assert kind_of_answer(status, body) == kind
    error = ApiError(status, body)
    assert error.kind == kind and error.status == status and str(error).startswith(f"HTTP {status}")


@pytest.mark.parametrize(("code", "details", "kind", "request_bytes"), GRPC_ANSWERS)
def test_grpc_answers_read_as_kinds(code, details, kind, request_bytes):
    assert kind_of_grpc(code, details, request_bytes) == kind
    if request_bytes <= MAX_REQUEST_SIZE:
        assert GrpcPredictionError(getattr(grpc.StatusCode, code), details).kind == kind


def test_each_kind_reads_back_from_its_own_status_and_code():
    """The tables and the readers agree: a kind's status (REST) and code (gRPC), with its body or
    TorchServe's words, read as that kind (the three no-worker kinds as the one TorchServe says)."""
    words = {k: (d, size) for _, d, k, size in GRPC_ANSWERS}
    either = ErrorKind.QUEUE_FULL_OR_NO_WORKER
    said = {ErrorKind.QUEUE_FULL: either, ErrorKind.NO_WORKER: either}
    for kind in ErrorKind:
        if kind in words or kind in said:  # TorchServe's: its words
            message, size = words[said.get(kind, kind)]
            assert kind_of_grpc(GRPC_CODE[kind], message, size) == said.get(kind, kind), kind
            assert kind_of_answer(HTTP_STATUS[kind], message) == said.get(kind, kind), kind
        else:  # the handler's: its body
            assert kind_of_answer(HTTP_STATUS[kind], error_body(kind, "m")) == kind
            with pytest.raises(GrpcPredictionError) as caught:
                _raise_if_error(error_body(kind, "m"))
            assert caught.value.kind == kind and caught.value.code.name == GRPC_CODE[kind]


def test_every_kind_is_raised(tmp_path):
    """The core raises its kinds (or returns them as a request's outcome); the clients read the
    others from TorchServe's answers (the REST client names QueueFull or NoWorker after asking
    how many workers are READY)."""
    core = paths.REPO / "review_sentiment" / "core"
    made = {
        node.func.id
        for path in core.glob("*.py")
        if path.name != "errors.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    }
    classes = [getattr(errors, name) for name in made if isinstance(getattr(errors, name, None), type)]
    by_the_core = {cls.kind for cls in classes if issubclass(cls, errors.SentimentError)}
    read = {kind for _, _, kind, _ in GRPC_ANSWERS}
    read |= {kind_of_answer(status, "") for status in (400, 404, 413, 500, 502)}
    client = TorchServeClient(Endpoints(), tmp_path / "no-keys.json")
    for ready in (0, 1):
        client.ready_workers = lambda ready=ready: ready
        read.add(ErrorKind(client._explained(503, {"code": 503, "message": NO_WORKER})["type"]))
    assert by_the_core == {cls.kind for cls in (errors.RequestError, *errors.RequestError.__subclasses__())}
    assert by_the_core | read == set(ErrorKind), set(ErrorKind) - by_the_core - read


def test_a_refusal_in_a_grpc_answer_raises_the_handlers_kind_and_code():
    """The gRPC frontend answers OK with the handler's JSON body: the client raises its kind."""
    body = error_body(ErrorKind.TEXT_TOO_LONG, "review over max_chars")
    with pytest.raises(GrpcPredictionError) as caught:
        _raise_if_error(body)
    error = caught.value
    assert error.kind == ErrorKind.TEXT_TOO_LONG and error.status == 413
    assert error.code.name == GRPC_CODE[ErrorKind.TEXT_TOO_LONG] and error.details == "review over max_chars"
    assert isinstance(TextTooLong("x"), ValueError)  # core errors stay ValueErrors for scripts


def test_a_refused_review_reads_the_same_in_a_result_row_over_either_transport():
    """predict_many's row for a refused review (the CLI, the UI and the rollout's canary read it)
    carries the kind, words and HTTP status whichever client was refused."""
    words, status = "5,000 characters: over max_chars (4,000)", HTTP_STATUS[ErrorKind.TEXT_TOO_LONG]
    rest = ApiError(status, error_body(ErrorKind.TEXT_TOO_LONG, words))
    grpc_error = GrpcPredictionError(grpc.StatusCode.INVALID_ARGUMENT, words, status, ErrorKind.TEXT_TOO_LONG)
    rows = [error_result(error)["error"] for error in (rest, grpc_error)]
    assert [(row["code"], row["type"]) for row in rows] == [(status, str(ErrorKind.TEXT_TOO_LONG))] * 2
    assert rows[0]["message"] == rows[1]["message"]
    assert error_result(ConnectionError("refused"))["error"] == {
        "code": None, "type": "ConnectionError", "message": "refused"}  # fmt: skip
