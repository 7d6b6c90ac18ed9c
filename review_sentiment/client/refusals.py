"""TorchServe's error answers read as the project's error kinds (core/errors.py), so the REST
client, the gRPC client, the CLI and the UI all speak of the same refusals."""

from __future__ import annotations

import json

from review_sentiment.client.retry import LOST
from review_sentiment.core.errors import ErrorKind, SentimentError


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
    return status == 401 or (status == 400 and "token" in text.lower())


def kind_of_answer(status: int, body: object) -> ErrorKind:
    """The kind of an error answer: the handler's own (its JSON names it), else TorchServe's
    refusal read from its status and words."""
    if isinstance(body, dict) and body.get("type") in _KINDS:
        return ErrorKind(body["type"])
    text = json.dumps(body) if isinstance(body, dict) else str(body)
    if is_auth_refusal(status, text):
        return ErrorKind.NOT_AUTHORIZED
    if status == 503:  # TorchServe 0.12's only 503: "... has no worker to serve inference request"
        return ErrorKind.QUEUE_FULL_OR_NO_WORKER
    if status in LOST:
        return ErrorKind.WORKER_LOST
    return {404: ErrorKind.NOT_FOUND, 413: ErrorKind.REQUEST_TOO_LARGE}.get(
        status, ErrorKind.BAD_REQUEST if 400 <= status < 500 else ErrorKind.SERVER_ERROR
    )
