"""The one error vocabulary: every kind has its HTTP status and gRPC code, and the clients read
TorchServe's answers (the handler's and the frontend's own) as the same kinds."""

from __future__ import annotations

import grpc
import pytest

from review_sentiment.client.grpc_client import GrpcPredictionError, _raise_if_error
from review_sentiment.client.refusals import kind_of_answer
from review_sentiment.client.rest import ApiError
from review_sentiment.core.errors import ErrorKind, TextTooLong
from review_sentiment.status_codes import GRPC_CODE, HTTP_STATUS, error_body


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


def test_a_refusal_in_a_grpc_answer_raises_the_handlers_kind_and_code():
    """The gRPC frontend answers OK with the handler's JSON body: the client raises its kind."""
    body = error_body(ErrorKind.TEXT_TOO_LONG, "review over max_chars")
    with pytest.raises(GrpcPredictionError) as caught:
        _raise_if_error(body)
    error = caught.value
    assert error.kind == ErrorKind.TEXT_TOO_LONG and error.status == 413
    assert error.code.name == GRPC_CODE[ErrorKind.TEXT_TOO_LONG] and error.details == "review over max_chars"
    assert isinstance(TextTooLong("x"), ValueError)  # core errors stay ValueErrors for scripts
