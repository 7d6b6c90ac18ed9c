"""Typed request errors, each mapped once to an HTTP status and a JSON body."""

from __future__ import annotations


class RequestError(ValueError):
    """A request the model cannot answer; only that request fails."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def kind(self) -> str:
        return type(self).__name__

    def to_dict(self) -> dict[str, object]:
        return {"code": self.status, "type": self.kind, "message": self.message}


class EmptyText(RequestError):
    pass


class NotUtf8(RequestError):
    pass


class MalformedJson(RequestError):
    pass


class TextTooLong(RequestError):
    status = 413
