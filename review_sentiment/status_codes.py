"""Each error kind mapped once per transport, as text-embeddings-inference maps its error type:
one table for HTTP, one for gRPC, neither derived from the other.

The handler's kinds travel with the status and code chosen here: the handler sets the HTTP
status, and the project's gRPC client raises the gRPC code (TorchServe 0.12's gRPC frontend
answers OK with the handler's JSON body). TorchServe's own refusals travel with what TorchServe
0.12 answers (read from its frontend's source, checked against a running server by
tests/test_serving.py); the clients read them back as kinds (client/refusals.py), telling the
kinds that share a status or code apart by TorchServe's words. Shipped in the model archive
beside the core, which knows no transport.
"""

from __future__ import annotations

from review_sentiment.core.errors import ErrorKind

HTTP_STATUS: dict[ErrorKind, int] = {
    # The handler's refusals.
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.EMPTY_TEXT: 400,
    ErrorKind.NOT_UTF8: 400,
    ErrorKind.MALFORMED_JSON: 400,
    ErrorKind.TEXT_TOO_LONG: 413,
    ErrorKind.EXPLANATIONS_OFF: 501,
    ErrorKind.EXPLAIN_BUSY: 503,
    # TorchServe's REST answers.
    ErrorKind.NOT_AUTHORIZED: 400,  # InvalidKeyException is a model exception there: not 401
    ErrorKind.REQUEST_TOO_LARGE: 413,  # an empty body, from Netty before any TorchServe code
    ErrorKind.QUEUE_FULL: 503,  # the three: one answer, "... has no worker ..."
    ErrorKind.NO_WORKER: 503,
    ErrorKind.QUEUE_FULL_OR_NO_WORKER: 503,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.WORKER_LOST: 500,  # 507 when the worker was killed for memory
    ErrorKind.SERVER_ERROR: 502,  # any status the clients cannot place: a proxy's 502 or 504
}

# grpc.StatusCode names (the handler does not import grpc).
GRPC_CODE: dict[ErrorKind, str] = {
    # The handler's refusals, as the gRPC client raises them.
    ErrorKind.BAD_REQUEST: "INVALID_ARGUMENT",
    ErrorKind.EMPTY_TEXT: "INVALID_ARGUMENT",
    ErrorKind.NOT_UTF8: "INVALID_ARGUMENT",
    ErrorKind.MALFORMED_JSON: "INVALID_ARGUMENT",
    ErrorKind.TEXT_TOO_LONG: "INVALID_ARGUMENT",
    ErrorKind.EXPLANATIONS_OFF: "UNIMPLEMENTED",
    ErrorKind.EXPLAIN_BUSY: "UNAVAILABLE",
    # TorchServe's gRPC answers.
    ErrorKind.NOT_AUTHORIZED: "PERMISSION_DENIED",  # its token interceptor
    ErrorKind.REQUEST_TOO_LARGE: "CANCELLED",  # the stream reset: "Stream removed (RST_STREAM ...)"
    ErrorKind.QUEUE_FULL: "INTERNAL",  # InferenceImpl answers "has no worker" with INTERNAL
    ErrorKind.NO_WORKER: "INTERNAL",
    ErrorKind.QUEUE_FULL_OR_NO_WORKER: "INTERNAL",
    ErrorKind.NOT_FOUND: "INTERNAL",  # InferenceImpl answers ModelNotFoundException with INTERNAL
    ErrorKind.WORKER_LOST: "INTERNAL",  # RESOURCE_EXHAUSTED when the worker was killed for memory
    ErrorKind.SERVER_ERROR: "UNKNOWN",  # any code the clients cannot place (UNAVAILABLE: unreachable)
}


def http_status(kind: ErrorKind | str) -> int:
    return HTTP_STATUS[ErrorKind(kind)]


def error_body(kind: ErrorKind, message: str) -> dict[str, object]:
    """The JSON answer of a refused request: {"code", "type", "message"}."""
    return {"code": http_status(kind), "type": str(kind), "message": message}
