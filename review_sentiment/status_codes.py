"""Each error kind mapped once to its transport codes: the HTTP status the handler sets (and the
frontend sends) and the gRPC code a gRPC client reports. Shipped in the model archive beside
the core, which knows no transport."""

from __future__ import annotations

from review_sentiment.core.errors import ErrorKind

HTTP_STATUS: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.EMPTY_TEXT: 400,
    ErrorKind.NOT_UTF8: 400,
    ErrorKind.MALFORMED_JSON: 400,
    ErrorKind.TEXT_TOO_LONG: 413,
    ErrorKind.EXPLANATIONS_OFF: 501,
    ErrorKind.EXPLAIN_BUSY: 503,
    ErrorKind.REQUEST_TOO_LARGE: 413,
    ErrorKind.QUEUE_FULL: 503,
    ErrorKind.NO_WORKER: 503,
    ErrorKind.QUEUE_FULL_OR_NO_WORKER: 503,
    ErrorKind.NOT_AUTHORIZED: 401,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.WORKER_LOST: 500,
    ErrorKind.SERVER_ERROR: 500,
}

# grpc.StatusCode names (the handler does not import grpc). TorchServe 0.12's gRPC frontend
# answers OK with the handler's JSON body for a request the handler refused; the gRPC client
# reads that body and reports the kind's code.
_GRPC_BY_HTTP = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    413: "INVALID_ARGUMENT",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}
GRPC_CODE: dict[ErrorKind, str] = {kind: _GRPC_BY_HTTP[status] for kind, status in HTTP_STATUS.items()}


def http_status(kind: ErrorKind | str) -> int:
    return HTTP_STATUS[ErrorKind(kind)]


def error_body(kind: ErrorKind, message: str) -> dict[str, object]:
    """The JSON answer of a refused request: {"code", "type", "message"}."""
    return {"code": http_status(kind), "type": str(kind), "message": message}
