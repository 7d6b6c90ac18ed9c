"""A catalogue of awkward requests and the answer each must get; the bad-input tests send every
one, the soak script draws from the light ones.

`expect` is "prediction" or the 4xx status. `frontend` marks the requests TorchServe's Java
frontend refuses itself (bodies over max_request_size): it answers 413 with an empty body, so
the project's client layer supplies the message.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from review_sentiment.client.rest import MAX_REQUEST_SIZE  # config.properties: max_request_size

__all__ = ["MAX_REQUEST_SIZE", "PREDICTION", "Case", "cases"]
PREDICTION = "prediction"


@dataclass(frozen=True)
class Case:
    name: str
    body: bytes
    content_type: str | None
    expect: str | int
    frontend: bool = False

    @property
    def heavy(self) -> bool:
        """Bodies of a megabyte or more: sent once each in the tests, never in the soak loop."""
        return len(self.body) >= 1_000_000


def _text(name: str, text: str, expect: str | int = PREDICTION) -> Case:
    return Case(name, text.encode("utf-8"), "text/plain; charset=utf-8", expect)


def _json(name: str, payload: object, expect: str | int = 400) -> Case:
    return Case(name, json.dumps(payload).encode("utf-8"), "application/json", expect)


def _raw(name: str, body: bytes, content_type: str | None, expect: str | int) -> Case:
    return Case(name, body, content_type, expect)


def cases(max_chars: int) -> list[Case]:
    """Every case, for a server whose handler allows `max_chars` characters."""
    nested = 100_000
    return [
        # Empty and blank
        _raw("empty-text", b"", "text/plain", 400),
        _raw("empty-json", b"", "application/json", 400),
        _raw("empty-no-content-type", b"", None, 400),
        _text("whitespace", "   ", 400),
        _text("tabs-newlines", "\t\n\r\n \t", 400),
        _text("unicode-spaces", "\u00a0\u2003\u3000", 400),
        # Sizes: the handler's max_chars, then the frontend's max_request_size
        _text("at-max-chars", "a" * max_chars),
        _text("over-max-chars", "a" * (max_chars + 1), 413),
        _text("50k-review", ("Great product. " * 4000)[:50_000], 413 if max_chars < 50_000 else PREDICTION),
        _text("1mb-review", "b" * 1_000_000, 413),
        Case("over-request-size", b"c" * (MAX_REQUEST_SIZE + 1), "text/plain", 413, frontend=True),
        Case("10mb-body", b"d" * 10 * 2**20, "text/plain", 413, frontend=True),
        _text("single-long-word", "x" * min(max_chars, 5000)),
        # Not UTF-8
        _raw("invalid-utf8-text", b"caf\xe9 au lait", "text/plain", 400),
        _raw("invalid-utf8-octet", b"\xff\xfe\xfd", "application/octet-stream", 400),
        _raw("invalid-utf8-json", b'{"text": "\xff"}', "application/json", 400),
        _raw("utf16-with-bom", "nice lipstick".encode("utf-16"), "text/plain", 400),
        _raw("png-bytes", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "image/png", 400),
        _raw("random-binary", bytes((i * 97 + 13) % 256 for i in range(4096)), "application/octet-stream", 400),
        # JSON of the wrong shape
        _json("json-text-null", {"text": None}),
        _json("json-text-number", {"text": 42}),
        _json("json-text-list", {"text": ["good", "bad"]}),
        _json("json-text-object", {"text": {"inner": "good"}}),
        _json("json-text-bool", {"text": True}),
        _json("json-text-empty", {"text": ""}),
        _json("json-no-text-field", {"review": "good"}),
        _json("json-null", None),
        _json("json-list", ["good"]),
        _json("json-number", 3.5),
        _raw("json-syntax-error", b'{"text": "good",}', "application/json", 400),
        _raw("json-truncated", b'{"text": "goo', "application/json", 400),
        _raw("json-deeply-nested", b"[" * nested + b"]" * nested, "application/json", 400),
        _raw("json-nested-text", b'{"text": ' + b'{"a": ' * 500 + b"1" + b"}" * 501, "application/json", 400),
        _raw("json-huge-integer", b'{"text": ' + b"9" * 5000 + b"}", "application/json", 400),
        _raw("json-content-type-plain-body", b"just words", "application/json", 400),
        # JSON that is fine
        _json("json-string", "a JSON string is a review", PREDICTION),
        _json("json-extra-fields", {"text": "good", "id": 7, "meta": {"x": [1, 2]}}, PREDICTION),
        _raw("json-charset", b'{"text": "good"}', "application/json; charset=utf-8", PREDICTION),
        _raw("json-escaped-emoji", b'{"text": "love it \\ud83d\\ude00"}', "application/json", PREDICTION),
        _raw("json-lone-surrogate", b'{"text": "odd \\ud800 char"}', "application/json", PREDICTION),
        # Content types TorchServe passes through as bytes
        _raw("no-content-type", b"plain words", None, PREDICTION),
        _raw("xml", b"<review>good</review>", "application/xml", PREDICTION),
        _raw("form-urlencoded", b"text=good+value", "application/x-www-form-urlencoded", PREDICTION),
        _raw("text-with-json-look", b'{"text": "as plain text"}', "text/plain", PREDICTION),
        _raw("utf8-bom", b"\xef\xbb\xbfgood value", "text/plain", PREDICTION),
        # Unusual but valid text
        _text("emoji", "😍😍 love it 💄✨"),
        _text("emoji-only", "👍"),
        _text("cjk", "这个口红颜色很好看，非常持久。とても良い。"),
        _text("right-to-left", "המוצר מעולה. المنتج رائع جدا"),
        _text("zero-width", "good\u200b\u200c\u200d\ufeffproduct"),
        _text("zero-width-only", "\u200b\u200b"),
        _text("control-chars", "good\x00\x01\x07\x1b[31m product\x7f"),
        _text("nul-only", "\x00"),
        _text("html-script", "<script>alert('x')</script><b>bad</b> product"),
        _text("punctuation-only", "!!!???...,,,;;;"),
        _text("sql-like", "'; DROP TABLE reviews; --"),
        _text("combining-marks", "Z\u0351\u0352a\u0353\u0354l\u0355g\u0356o"),
        _text("many-lines", "good\n" * min(max_chars // 5, 400)),
    ]
