"""Security against real TorchServes: the session `server` (project defaults: token auth on,
loopback, so the model API on behind the shipped `allowed_urls`) and one whose keys expire after
3 seconds.

test_serving.py already covers: no key / wrong key / the other API's key refused, registering
refused without the management key and with auth off, rotated keys picked up, and the review
marker absent from logs/.
"""

from __future__ import annotations

import functools
import http.server
import ipaddress
import shutil
import socket
import stat
import threading
import time

import psutil
import pytest
import requests

from reliability.inputs import MAX_REQUEST_SIZE
from review_sentiment import cli, paths
from review_sentiment.client.grpc_client import GrpcClient, GrpcPredictionError
from review_sentiment.client.keys import KeyFile, bearer
from review_sentiment.client.many import predict_many
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.config_properties import read_properties, render_config
from review_sentiment.serve.model_config import model_config
from review_sentiment.serve.sandbox import sandbox
from review_sentiment.serve.server import _print_urls
from tests.conftest import TEST_MODEL_CONFIG

pytestmark = pytest.mark.serving

MARKER = "wombat-secret-review-5127"
KEY_LIFETIME_S = 3  # token_expiration_min=0.05 on the model-API server


def every_file(folder):
    return [p for p in folder.rglob("*") if p.is_file()]


# --- the project's defaults (session server) -------------------------------------------------


def test_key_file_is_readable_by_its_owner_only(server):
    key_file = server.run_dir / "key_file.json"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    # Still so after the server rewrites it (a key renewed through the token API).
    renewed = KeyFile(key_file).renew("management", Endpoints.load(server.run_dir).management_url)
    assert renewed.status_code == 200
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    # Java listens on IPv6 sockets: 127.0.0.1 shows as the IPv4-mapped ::ffff:127.0.0.1.
    return (getattr(address, "ipv4_mapped", None) or address).is_loopback


def test_every_port_listens_on_loopback_only(server):
    frontend = psutil.Process(server.frontend_pid)
    listening = [c for c in frontend.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN]
    endpoints = Endpoints.load(server.run_dir)
    ports = {c.laddr.port for c in listening}
    assert {endpoints.inference_port, endpoints.management_port, endpoints.metrics_port} <= ports
    assert {endpoints.grpc_inference_port, endpoints.grpc_management_port} <= ports
    assert all(is_loopback(c.laddr.ip) for c in listening), listening


def test_nothing_answers_on_the_machines_other_addresses(server):
    endpoints = Endpoints.load(server.run_dir)
    others = [
        a.address
        for addresses in psutil.net_if_addrs().values()
        for a in addresses
        if a.family == socket.AF_INET and not is_loopback(a.address)
    ]
    if not others:  # said, rather than passing without a check
        pytest.skip("this machine has no address besides loopback to connect from")
    for address in others:
        for port in endpoints.ports().values():
            with pytest.raises(OSError), socket.create_connection((address, port), timeout=3):
                pass


def test_registering_and_unregistering_need_the_management_key(server):
    endpoints, keys = Endpoints.load(server.run_dir), server.keys()
    models = f"{endpoints.management_url}/models"
    for key in (None, keys["inference"], "not-a-key"):
        headers = bearer(key)
        params = {"url": "sentiment.mar", "model_name": "copy"}
        registered = requests.post(models, params=params, headers=headers, timeout=10)
        removed = requests.delete(f"{models}/sentiment", headers=headers, timeout=10)
        for refused in (registered, removed):
            assert refused.status_code == 400 and refused.json()["type"] == "InvalidKeyException", refused.text
    assert TorchServeClient.for_run_dir(server.run_dir).ready_workers() >= 1


@pytest.mark.parametrize(
    ("bind", "auth", "model_api"),
    [("127.0.0.1", True, "true"), ("::1", True, "true"), ("0.0.0.0", True, "false"), ("127.0.0.1", False, "false")],
)
def test_the_model_api_is_on_only_with_keys_on_loopback(bind, auth, model_api):
    """Off wherever the management API is reachable from elsewhere (the containers) or takes no
    key, whatever the file or a caller's overrides say."""
    template = (paths.CONFIG_DIR / "config.properties").read_text()
    for overrides in (None, {"enable_model_api": "true"}):
        text = render_config(template, Endpoints.free(), bind, auth, overrides)
        assert read_properties(text)["enable_model_api"] == model_api
        assert read_properties(text)["allowed_urls"] == "^$"


def test_review_text_and_keys_never_reach_any_file_or_output(server, capsys):
    """A marker review sent every way, accepted and refused, then every file the server wrote
    (logs, run folder, unpacked model) is searched for it and for every key; and the CLI's and
    launcher's output holds no key."""
    client = TorchServeClient.for_run_dir(server.run_dir)
    client.predict(f"Lovely colour. {MARKER}")
    client.predict_json({"text": f"Broke me out. {MARKER}"})
    refused = [
        (f"{MARKER}".encode() * 300, "text/plain"),  # over max_chars: 413 from the handler
        (f'{{"text": "{MARKER}",'.encode(), "application/json"),  # malformed JSON
        (f'{{"text": ["{MARKER}"]}}'.encode(), "application/json"),  # wrong type
        (MARKER.encode() + b"\xff", "text/plain"),  # not UTF-8
        (MARKER.encode() * (MAX_REQUEST_SIZE // len(MARKER) + 1), "text/plain"),  # over max_request_size
    ]
    for body, content_type in refused:
        response = client.request(
            "POST", "inference", "/predictions/sentiment", data=body, headers={"Content-Type": content_type}
        )
        assert 400 <= response.status_code < 500
    with GrpcClient.for_run_dir(server.run_dir) as grpc_client:
        grpc_client.predict(f"gRPC {MARKER}")
        with pytest.raises(GrpcPredictionError):
            grpc_client.predict(MARKER * 300)
    assert cli.main(["--run-dir", str(server.run_dir), "predict", f"CLI {MARKER}"]) == 0
    assert cli.main(["--run-dir", str(server.run_dir), "describe"]) == 0
    _print_urls(Endpoints.load(server.run_dir), server.run_dir, auth=True)
    printed = capsys.readouterr()
    keys = server.keys()
    time.sleep(1)  # let the log appenders flush
    files = [p for p in every_file(server.run_dir) if p.name != "key_file.json"]
    assert any(p.name == "model_log.log" for p in files) and any(p.name == "ts_log.log" for p in files)
    for path in files:
        content = path.read_bytes()
        assert MARKER.encode() not in content, path
        for kind, key in keys.items():
            assert key.encode() not in content, (kind, path)
    for kind, key in keys.items():
        assert key not in printed.out + printed.err, kind


# --- the model API, behind allowed_urls, and short-lived keys ---------------------------------------------


class _Recorder(http.server.SimpleHTTPRequestHandler):
    """Serves a real .mar over HTTP and records every request (none may arrive)."""

    requests_seen: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.requests_seen.append(self.path)
        super().do_GET()

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def model_api_server(tmp_path_factory, tiny_checkpoint):
    folder = tmp_path_factory.mktemp("model-api")
    # The project's config.properties (the model API on, allowed_urls as shipped), short-lived keys.
    properties = {"token_expiration_min": str(KEY_LIFETIME_S / 60)}
    config = model_config(TEST_MODEL_CONFIG, handler={"warmup": False})
    with sandbox(tiny_checkpoint, folder, model_config=config, properties=properties) as server:
        yield server


@pytest.fixture(scope="module")
def outside(tmp_path_factory, model_api_server):
    """A copy of the .mar outside the store, also served over HTTP on 127.0.0.1."""
    folder = tmp_path_factory.mktemp("outside")
    shutil.copy(model_api_server.model_store / "sentiment.mar", folder / "other.mar")
    handler = functools.partial(_Recorder, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def register(client: TorchServeClient, url: str, name: str) -> requests.Response:
    params = {"url": url, "model_name": name, "initial_workers": 0, "synchronous": "true"}
    return client.request("POST", "management", "/models", params=params)


def test_model_api_admits_the_local_store_only(model_api_server, outside):
    client = TorchServeClient.for_run_dir(model_api_server.run_dir)
    store = model_api_server.model_store
    folder, http_base = outside
    assert requests.get(f"{http_base}/other.mar", timeout=10).status_code == 200  # the URL itself works
    _Recorder.requests_seen.clear()
    for url in (
        f"{http_base}/other.mar",  # a remote archive (the ShellTorch class of attack)
        f"file://{folder}/other.mar",  # a local file outside the store
        f"file://{store}/../{folder.name}/other.mar",  # escaping the store with ..
        f"file://{store}/x/../../{folder.name}/other.mar",
        "https://example.invalid/model.mar",
        f"file://{store}/sentiment.mar",  # even the store itself, by URL: archives go by name only
    ):
        response = register(client, url, "intruder")
        assert 400 <= response.status_code < 500, (url, response.status_code, response.text)
        assert "allowed" in response.text.lower(), (url, response.text)
    # Paths, not URLs: TorchServe takes the file name alone and looks for it in the store.
    for path, words in ((f"{folder}/other.mar", "not found"), (f"../{folder.name}/other.mar", "relative path")):
        response = register(client, path, "intruder")
        assert response.status_code == 404 and words in response.text.lower(), (path, response.text)
    assert _Recorder.requests_seen == [], "TorchServe fetched a URL outside allowed_urls"
    assert "can access any URL" not in (model_api_server.log_dir / "ts_log.log").read_text()  # its own warning
    assert [m["modelName"] for m in client.request("GET", "management", "/models").json()["models"]] == ["sentiment"]
    # The control: an archive of the store, named as such, is admitted.
    shutil.copy(store / "sentiment.mar", store / "copy.mar")
    admitted = register(client, "copy.mar", "copy")
    assert admitted.status_code == 200, admitted.text
    assert client.request("DELETE", "management", "/models/copy").status_code == 200


def test_expired_key_is_refused(model_api_server):
    """Keys live 3 s here: the same key works, then is refused once expired; the project's client
    gets a new one through the token API and carries on."""
    endpoints = Endpoints.load(model_api_server.run_dir)
    client = TorchServeClient.for_run_dir(model_api_server.run_dir)
    client.predict("fresh key")
    key = client.keys.key("inference")

    def with_key() -> requests.Response:
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "text/plain"}
        return requests.post(f"{endpoints.inference_url}/predictions/sentiment", data=b"x", headers=headers, timeout=30)

    first = with_key()
    if first.status_code != 200:  # the key aged on the way: renew and take the new one
        client.predict("renew")
        key = client.keys.key("inference")
        first = with_key()
    assert first.status_code == 200
    time.sleep(KEY_LIFETIME_S + 1)
    expired = with_key()
    assert expired.status_code == 400 and expired.json()["type"] == "InvalidKeyException"
    assert client.predict("renewed through the API key")["label"] in ("negative", "positive")
    assert client.keys.key("inference") != key


def test_sixteen_clients_across_real_expiries(model_api_server):
    """A batch of 16 requests in flight (the CLI's and the UI's) while keys expire every 3 s:
    each expiry is renewed once for all threads, and no review is refused."""
    client = TorchServeClient.for_run_dir(model_api_server.run_dir)
    start, results = time.monotonic(), []
    while time.monotonic() - start < 3 * KEY_LIFETIME_S:
        results += predict_many(client, [f"review {i}: fine" for i in range(64)], concurrency=16)
    assert [r["error"] for r in results if "error" in r] == []
    assert client.keys.renewals >= 2, "the run did not span two expiries"
