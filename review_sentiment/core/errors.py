"""The project's one error vocabulary: every way a review can go unanswered, by kind, and each
kind raised somewhere (tests/test_errors.py checks it).

The core raises the request kinds: a review it cannot classify or explain, which the handler
refuses with the kind's HTTP status. The clients raise TorchServe's kinds, read from what it
answers when it refuses a request before the model sees it (client/refusals.py). Transport
codes are not chosen here: `review_sentiment.status_codes` maps each kind once per transport,
an HTTP table and a gRPC table. Anchor: text-embeddings-inference's core error type, mapped to
HTTP and to gRPC in its router.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorKind(StrEnum):
    # Raised by the core, refused by the handler: only that request fails.
    BAD_REQUEST = "RequestError"  # a payload that is no review at all; the clients: any other 4xx
    EMPTY_TEXT = "EmptyText"
    NOT_UTF8 = "NotUtf8"
    MALFORMED_JSON = "MalformedJson"
    TEXT_TOO_LONG = "TextTooLong"
    EXPLANATIONS_OFF = "ExplanationsOff"  # this server does not offer explanations (setting explain)
    EXPLAIN_BUSY = "ExplainBusy"  # the batch's explanation time budget is spent; a retry is served
    # Raised by the clients, read from TorchServe's own refusals (before the model).
    REQUEST_TOO_LARGE = "RequestTooLarge"  # body over the frontend's max_request_size
    QUEUE_FULL = "QueueFull"  # the REST client asks which of the two it is (rest.py)
    NO_WORKER = "NoWorker"
    QUEUE_FULL_OR_NO_WORKER = "QueueFullOrNoWorker"  # TorchServe says the same for both
    NOT_AUTHORIZED = "NotAuthorized"  # key missing, wrong or expired
    NOT_FOUND = "NotFound"  # no such model, version or path
    WORKER_LOST = "WorkerLost"  # the worker died or hung with the request (idempotent: retried)
    SERVER_ERROR = "ServerError"  # an answer none of the above (a proxy's 502, gRPC unreachable)


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
