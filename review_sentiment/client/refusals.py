"""TorchServe's error answers read as the project's error kinds (core/errors.py), one reader per
transport, so the REST client, the gRPC client, the CLI and the UI all speak of the same refusals.

A refusal of the handler names its kind in its JSON body. TorchServe's own refusals are read
from the status or code it answers with (status_codes.py records them per transport) and, where
several share one, from its words below. Source: TorchServe 0.12's frontend (grpcimpl/
InferenceImpl.java, GRPCInterceptor.java, util/GRPCUtils.java, wlm/WorkerThread.java).
"""

from __future__ import annotations

import json

from review_sentiment.core.errors import ErrorKind, SentimentError

# TorchServe 0.12's words for its refusals.
NO_WORKER = "has no worker to serve inference request"  # both when its job queue is full and when no worker is ready
TOKEN_REFUSED = "token"  # InvalidKeyException: "Token Authorization failed. Token either incorrect, expired, ..."
NOT_FOUND = ("Model not found", "ModelNotFoundException", "ModelVersionNotFoundException")
BAD_REQUEST = "BadRequestException"  # over gRPC with INTERNAL, e.g. "Parameter model_name is required."
# REST statuses of the requests of a batch whose worker died or hung (507: killed for memory).
LOST = (500, 507)
# Over max_request_size TorchServe answers REST with an empty 413 (or resets the connection) and
# gRPC with CANCELLED "Stream removed (RST_STREAM ...)": no words, so the clients, which know
# what they sent, say it themselves.
MAX_REQUEST_SIZE = 1024 * 1024  # config.properties' max_request_size, the project's default
TOO_LARGE_MESSAGE = "body over the server's max_request_size (1 MiB by default): send a shorter review"


class ServiceError(SentimentError):
    """The server refused or failed a call. `status`: the HTTP status it answered (None when
    there was none); `body`: its answer, JSON where it sent JSON."""

    def __init__(self, kind: ErrorKind, message: str, status: int | None = None, body: object = None):
        super().__init__(message, kind)
        self.status, self.body = status, body


_KINDS = {str(kind) for kind in ErrorKind}


def is_auth_refusal(status: int, text: str) -> bool:
    # TorchServe 0.12 answers 400 InvalidKeyException when the key is missing, wrong or expired;
    # 401 is accepted too, should a later release use it.
    return status == 401 or (status == 400 and TOKEN_REFUSED in text.lower())


def kind_of_answer(status: int, body: object) -> ErrorKind:
    """The kind of a REST error answer: the handler's own (its JSON names it), else TorchServe's
    refusal read from its status and words."""
    if isinstance(body, dict) and body.get("type") in _KINDS:
        return ErrorKind(body["type"])
    text = json.dumps(body) if isinstance(body, dict) else str(body)
    if is_auth_refusal(status, text):
        return ErrorKind.NOT_AUTHORIZED
    if status == 503:  # TorchServe 0.12's only 503: NO_WORKER
        return ErrorKind.QUEUE_FULL_OR_NO_WORKER
    if status in LOST:
        return ErrorKind.WORKER_LOST
    return {404: ErrorKind.NOT_FOUND, 413: ErrorKind.REQUEST_TOO_LARGE}.get(
        status, ErrorKind.BAD_REQUEST if 400 <= status < 500 else ErrorKind.SERVER_ERROR
    )


def kind_of_grpc(code: str, details: str, request_bytes: int = 0) -> ErrorKind:
    """The kind of a failed gRPC call, from TorchServe's code (a grpc.StatusCode name) and words,
    and the size of the request message. The handler's refusals arrive as OK answers with its
    JSON body (grpc_client reads those)."""
    if request_bytes > MAX_REQUEST_SIZE and code in ("CANCELLED", "RESOURCE_EXHAUSTED"):
        return ErrorKind.REQUEST_TOO_LARGE
    if code in ("PERMISSION_DENIED", "UNAUTHENTICATED"):
        return ErrorKind.NOT_AUTHORIZED
    if NO_WORKER in details:
        return ErrorKind.QUEUE_FULL_OR_NO_WORKER
    if code == "NOT_FOUND" or any(words in details for words in NOT_FOUND):
        return ErrorKind.NOT_FOUND
    if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION") or BAD_REQUEST in details:
        return ErrorKind.BAD_REQUEST
    if code in ("INTERNAL", "RESOURCE_EXHAUSTED"):  # "Worker died.", "did not respond in given time"
        return ErrorKind.WORKER_LOST
    return ErrorKind.SERVER_ERROR
