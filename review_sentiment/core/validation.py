"""Turn one TorchServe request payload into review text, or a typed RequestError.

Accepted: a text/plain body (UTF-8), a JSON object {"text": "..."} (decoded by TorchServe
or sent as raw bytes, e.g. over gRPC), or raw UTF-8 bytes. Error messages never quote the
review: they can end up in logs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from review_sentiment.core.errors import EmptyText, MalformedJson, NotUtf8, RequestError, TextTooLong

# Keys under which TorchServe passes the payload: "body" (REST), "data" (REST form, gRPC).
PAYLOAD_KEYS = ("body", "data", "text")


def payload_of(request: object) -> object:
    """The payload inside one entry of TorchServe's batch list."""
    if isinstance(request, dict):
        for key in PAYLOAD_KEYS:
            if request.get(key) is not None:
                return request[key]
    return request


def header(headers: Mapping[str, object], name: str) -> str | None:
    """A request header by name, in any spelling: HTTP names are case-insensitive, and TorchServe
    passes them to the worker as the client wrote them ("content-type" from Node, HTTP/2, proxies).
    Non-string values (TorchServe files each parameter's own headers as a dict) are skipped."""
    wanted = name.lower()
    return next((v for k, v in headers.items() if k.lower() == wanted and isinstance(v, str)), None)


def _from_json_object(obj: object) -> str:
    if not isinstance(obj, dict):
        raise MalformedJson('JSON body must be an object like {"text": "..."}')
    text = obj.get("text")
    if not isinstance(text, str):
        raise MalformedJson('JSON body needs a string field "text"')
    return text


def review_text(payload: object, max_chars: int, content_type: str | None = None) -> str:
    """Validated review text from one payload; raises RequestError."""
    if isinstance(payload, (bytes, bytearray)):
        try:
            payload = bytes(payload).decode("utf-8")
        except UnicodeDecodeError:
            raise NotUtf8("body is not valid UTF-8 text") from None
        is_json = (content_type or "").startswith("application/json")
        if is_json or payload.lstrip().startswith("{"):
            try:
                payload = json.loads(payload)
            except (ValueError, RecursionError):  # bad syntax, an over-long integer, nesting too deep
                if is_json:
                    raise MalformedJson("body is not valid JSON") from None
                # Not JSON after all: a review that happens to start with "{".
    if isinstance(payload, (dict, list, int, float)):  # decoded JSON that is not text
        payload = _from_json_object(payload)
    if not isinstance(payload, str):
        raise RequestError(f"unsupported payload type {type(payload).__name__}")
    payload = payload.encode("utf-8", "replace").decode("utf-8")  # JSON "\ud800" (lone surrogate) breaks tokenizers
    if not payload.strip():
        raise EmptyText("review text is empty")
    if len(payload) > max_chars:
        raise TextTooLong(f"review has {len(payload)} characters; the limit is {max_chars}")
    return payload
