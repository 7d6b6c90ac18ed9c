"""Key renewal under concurrency, against a stand-in for TorchServe's token auth (no Java): it
accepts only the current key of each kind, and its token API replaces a key at once, as
TorchServe 0.12 does. tests/test_security.py repeats the expiry against a real TorchServe."""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from review_sentiment.client.keys import KeyFile
from review_sentiment.client.many import predict_many
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from tests.helpers import JsonHandler

REFUSAL = {"code": 400, "type": "InvalidKeyException", "message": "Token Authorization failed. Token either incorrect"}


class _Server(ThreadingHTTPServer):
    request_queue_size = 128  # the default backlog of 5 drops a burst of 32 connections
    daemon_threads = True


class FakeTokenServer:
    """Inference (POST /predictions/<model>) and token (GET /token?type=) APIs on one port."""

    def __init__(self, key_file: Path):
        self.key_file = key_file
        self.lock = threading.Lock()
        self.valid = {kind: secrets.token_hex(4) for kind in ("inference", "management", "API")}
        self.renewals = 0
        self._write()
        self.httpd = _Server(("127.0.0.1", 0), self._handler())
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        port = self.httpd.server_address[1]
        self.endpoints = Endpoints(inference_port=port, management_port=port)

    def _write(self) -> None:
        self.key_file.write_text(json.dumps({kind: {"key": key} for kind, key in self.valid.items()}))

    def expire(self, kind: str) -> None:
        """The server stops accepting the key; the file still holds it (as after 60 minutes)."""
        with self.lock:
            self.valid[kind] = "expired-" + self.valid[kind]

    def _handler(self):
        server = self

        class Handler(JsonHandler):
            def _key_ok(self, kind: str) -> bool:
                with server.lock:
                    return self.headers.get("Authorization") == f"Bearer {server.valid[kind]}"

            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                time.sleep(0.01)  # requests overlap, as in a batch
                if not self._key_ok("inference"):
                    return self._answer(400, REFUSAL)
                self._answer(200, {"label": "positive", "score": 0.9, "probabilities": {"positive": 0.9}})

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if url.path != "/token" or not self._key_ok("API"):
                    return self._answer(400, REFUSAL)
                kind = parse_qs(url.query)["type"][0]
                time.sleep(0.05)  # a slow token API widens any race
                with server.lock:
                    server.renewals += 1
                    server.valid[kind] = secrets.token_hex(4)  # the previous key is refused from now on
                    server._write()
                self._answer(200, {"message": "renewed"})

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def token_server(tmp_path) -> Iterator[FakeTokenServer]:
    server = FakeTokenServer(tmp_path / "key_file.json")
    yield server
    server.close()


def test_expired_key_is_renewed_once_for_many_threads(token_server):
    """32 requests in flight when the key expires: one renewal, every review answered."""
    client = TorchServeClient(token_server.endpoints, token_server.key_file)
    assert client.predict("warm the key cache")["label"] == "positive"
    token_server.expire("inference")
    results = predict_many(client, [f"review {i}" for i in range(64)], concurrency=32)
    assert [r for r in results if "error" in r] == []
    assert token_server.renewals == 1


def test_clients_with_their_own_key_files_share_one_renewal(token_server):
    """The UI, the CLI and tests may each hold a KeyFile of the same server in one process."""
    clients = [TorchServeClient(token_server.endpoints, token_server.key_file) for _ in range(16)]
    for client in clients:
        client.keys.key("inference")
    token_server.expire("inference")
    barrier = threading.Barrier(len(clients))
    failures: list[Exception] = []

    def one(client: TorchServeClient) -> None:
        barrier.wait()
        try:
            client.predict("at the same moment")
        except Exception as error:  # noqa: BLE001 (collected and asserted below)
            failures.append(error)

    threads = [threading.Thread(target=one, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == [] and token_server.renewals == 1


def test_refresh_is_keyed_by_the_refused_key(token_server):
    """A refusal of a key the file no longer holds (already renewed) renews nothing."""
    keys = KeyFile(token_server.key_file)
    old = keys.key("inference")
    token_server.expire("inference")
    assert keys.refresh("inference", token_server.endpoints.management_url, refused=old)
    assert token_server.renewals == 1
    new = keys.key("inference")
    assert new != old
    # A late thread still holding the old key: the file's key differs, so no second renewal.
    assert keys.refresh("inference", token_server.endpoints.management_url, refused=old)
    assert token_server.renewals == 1 and keys.key("inference") == new
