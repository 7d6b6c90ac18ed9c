"""This project's TorchServe, sandboxed (review_sentiment/serve/sandbox.py: the project's
config.properties, token auth on, free loopback ports), serving a checkpoint archived with a
model-config; REST through wrk or the Python client, and gRPC."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.systems import FIRST_REVIEW, Running
from review_sentiment import paths
from review_sentiment.client.load_driver import Target
from review_sentiment.serve.sandbox import sandbox


@dataclass
class TorchServe:
    config: dict  # the model-config (serve/model_config.py's model_config())
    properties: Mapping[str, str] = field(default_factory=dict)  # config.properties overrides
    env: Mapping[str, str] = field(default_factory=dict)  # added to the frontend's and workers' environment
    auth: bool = True  # token authorization (the project's default); the peer comparison turns it off
    name: str = "torchserve"
    title: str = "TorchServe"
    clients: tuple[str, ...] = ("wrk", "rest", "grpc")
    lengths: tuple[int, ...] | None = None

    @contextlib.contextmanager
    def start(self, checkpoint: Path, work: Path) -> Iterator[Running]:
        options = {"model_config": self.config, "properties": self.properties, "env": self.env, "timeout": 600}
        options["auth"] = self.auth
        with sandbox(checkpoint, work, **options) as server:
            server.client.predict(FIRST_REVIEW)
            cold_start = time.monotonic() - server.started_at
            headers = tuple(server.inference_headers().items())
            rest = f"{server.endpoints.inference_url}/predictions/{paths.model_name()}"
            targets = {
                "rest": Target("rest", rest, headers),
                "grpc": Target("grpc", server.endpoints.grpc_target, headers, paths.model_name()),
            }
            yield Running(
                targets, cold_start, lambda: {"frontend": server.frontend_pid, "workers": server.worker_pids()}
            )


def describe(config: dict) -> str:
    handler = config.get("handler", {})
    return (
        f"{config.get('deviceType', 'cpu')}, batchSize {config['batchSize']}, "
        f"maxBatchDelay {config['maxBatchDelay']} ms, "
        f"workers {config['minWorkers']}, torch_threads {handler.get('torch_threads', 0)} (0 = cores / workers), "
        f"cpu_precision {handler.get('cpu_precision', 'auto')}, gpu_precision {handler.get('gpu_precision', 'fp16')}, "
        f"max_length {handler.get('max_length')}"
    )
