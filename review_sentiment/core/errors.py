"""The project's one error vocabulary: every way a review can go unanswered, by kind.

The core raises the request kinds (a review it cannot classify or explain); the clients raise
the same kinds for what the serving stack refuses before the model sees a request (too large,
queue full, no worker, key refused). Transport codes are not chosen here: `review_sentiment.
status_codes` maps each kind once to an HTTP status (used by the handler) and a gRPC code.
Anchor: text-embeddings-inference's core error type, mapped to HTTP and gRPC in its router.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    # A request the model cannot answer: only that request fails (raised by the core).
    BAD_REQUEST = "RequestError"  # a payload that is no review at all (e.g. no body)
    EMPTY_TEXT = "EmptyText"
    NOT_UTF8 = "NotUtf8"
    MALFORMED_JSON = "MalformedJson"
    TEXT_TOO_LONG = "TextTooLong"
    EXPLANATIONS_OFF = "ExplanationsOff"  # this server does not offer explanations (setting explain)
    EXPLAIN_BUSY = "ExplainBusy"  # the batch's explanation time budget is spent; a retry is served
    # Refused by the serving stack before the model (named by the clients from its answers).
    REQUEST_TOO_LARGE = "RequestTooLarge"  # body over the frontend's max_request_size
    QUEUE_FULL = "QueueFull"
    NO_WORKER = "NoWorker"
    QUEUE_FULL_OR_NO_WORKER = "QueueFullOrNoWorker"  # TorchServe says the same for both
    NOT_AUTHORIZED = "NotAuthorized"  # key missing, wrong or expired
    NOT_FOUND = "NotFound"  # no such model, version or path
    WORKER_LOST = "WorkerLost"  # the worker died or hung with the request (idempotent: retried)
    SERVER_ERROR = "ServerError"  # anything else the server got wrong


class SentimentError(Exception):
    """A review (or call) that got no answer, with its kind and a message meant for people."""

    kind: ErrorKind = ErrorKind.SERVER_ERROR

    def __init__(self, message: str, kind: ErrorKind | None = None):
        super().__init__(message)
        self.message = message
        if kind is not None:
            self.kind = kind

    def to_dict(self) -> dict[str, object]:
        return {"type": str(self.kind), "message": self.message}


class RequestError(SentimentError, ValueError):
    """A request the model cannot answer; only that request fails."""

    kind = ErrorKind.BAD_REQUEST


class EmptyText(RequestError):
    kind = ErrorKind.EMPTY_TEXT


class NotUtf8(RequestError):
    kind = ErrorKind.NOT_UTF8


class MalformedJson(RequestError):
    kind = ErrorKind.MALFORMED_JSON


class TextTooLong(RequestError):
    kind = ErrorKind.TEXT_TOO_LONG


class ExplanationsOff(RequestError):
    kind = ErrorKind.EXPLANATIONS_OFF


class ExplainBusy(RequestError):
    kind = ErrorKind.EXPLAIN_BUSY
