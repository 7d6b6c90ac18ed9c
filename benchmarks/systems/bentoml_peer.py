"""BentoML 1.4.40 over the core: one service, `workers` processes of one CPU each, each an HTTP
server (uvicorn) with BentoML's adaptive batching in front of its model. BentoML has no fixed
batch window: its dispatcher chooses the wait from the traffic, up to `max_batch_size`
(TorchServe's batchSize); `max_latency_ms` is only the bound past which it refuses, left at 60 s.
A batchable endpoint takes and returns a batch: the request is {"text": [review]} and the answer
[answer] (the same fields as every system's, one level of list deeper). No API token: auth off.

    .venv-peers/bin/python -m benchmarks.systems.bentoml_peer --checkpoint DIR --config CONFIG.json --port P
"""

from __future__ import annotations

import json
import os
import sys

import psutil

from benchmarks.systems.peer import Layout, PeerServer, classify_json, cmdline, load_classifier, read_config

try:
    import bentoml
except ImportError:  # the harness's venv: only system() is used there
    bentoml = None

CONFIG_ENV = "SENTIMENT_PEER_SERVER"  # {"checkpoint", "config"} for the service's processes


def batch_body(text: str) -> bytes:
    return json.dumps({"text": [text]}).encode("utf-8")


def _role(process: psutil.Process) -> str:
    # The started process execs `bentoml serve` (circus's arbiter); its workers run the service.
    return "workers" if "worker" in cmdline(process) else "frontend"


def system(config: dict) -> PeerServer:
    peer = PeerServer("bentoml", "BentoML 1.4.40", __name__, "/predict", _role, config)
    peer.body = batch_body
    return peer


class _SameSession:
    """`os` for circus (BentoML's process manager), whose workers call setsid(): each would be a
    session, so a scheduling group of its own under the kernel's autogroup, and on a shared
    machine take a whole group's share of the CPU, where every other system's processes share
    one group (docs/benchmarks.md). The workers stay in the server's session; nothing else
    changes."""

    def __getattr__(self, name: str):
        return getattr(os, name)

    @staticmethod
    def setsid() -> None:
        pass


if bentoml is not None and CONFIG_ENV in os.environ:
    import circus.process

    circus.process.os = _SameSession()  # in the arbiter, which imports this module before it spawns
    _server = json.loads(os.environ[CONFIG_ENV])
    _layout = Layout.of(_server["config"])

    _resources = {"cpu": str(_layout.threads)} | ({"gpu": 1} if _layout.device == "cuda" else {})

    @bentoml.service(workers=_layout.workers, resources=_resources, traffic={"timeout": 60})
    class Sentiment:
        def __init__(self) -> None:
            self.classifier = load_classifier(_server["checkpoint"], _server["config"])

        @bentoml.api(batchable=True, max_batch_size=_layout.batch_size, max_latency_ms=60_000)
        def predict(self, text: list[str]) -> list[dict]:
            return [body for _, body in classify_json(self.classifier, list(text))]


def main() -> None:
    from benchmarks.systems.peer import server_args

    args = server_args("BentoML over the review sentiment core (benchmark peer).")
    os.environ[CONFIG_ENV] = json.dumps({"checkpoint": args.checkpoint, "config": read_config(args.config)})
    command = [sys.executable, "-m", "bentoml", "serve", "benchmarks.systems.bentoml_peer:Sentiment"]
    os.execv(sys.executable, [*command, "--host", "127.0.0.1", "--port", str(args.port)])


if __name__ == "__main__":
    main()
