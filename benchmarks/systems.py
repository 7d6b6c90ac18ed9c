"""Start and stop the served systems under test, each on free loopback ports, and read their
cold start (start command to first answer), resident memory and CPU time."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import requests

from review_sentiment import paths
from review_sentiment.client.load_driver import Target
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.processes import process_usage
from review_sentiment.serve.sandbox import sandbox
from review_sentiment.waiting import wait_until

FIRST_REVIEW = "Arrived quickly and works as described."


@dataclass
class Running:
    """A system under test, until its block ends."""

    targets: dict[str, Target]
    cold_start_s: float
    # Resident memory now, in MiB: the Java frontend and each worker, or the one process.
    memory: Callable[[], dict]
    # CPU seconds so far (user + system, all threads) by process: "frontend" and "workers" (all
    # together), or "process". Differences over a window give CPU per request.
    cpu_seconds: Callable[[], dict[str, float]]
    worker_pids: Callable[[], list[int]] = list  # TorchServe's Python workers; none for Flask


def _free_port() -> int:
    return Endpoints.free().inference_port


@contextlib.contextmanager
def flask_baseline(
    checkpoint: Path,
    log_dir: Path,
    device: str = "cpu",
    precision: str = "fp32",
    max_length: int | None = None,
    timeout: float = 300,
) -> Iterator[Running]:
    """The seed's Flask design (benchmarks/flask_baseline.py) as a subprocess, until the block
    ends; fp32 with the model's own 512 tokens is how the seed ran it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}/predict"
    log_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "benchmarks.flask_baseline", "--checkpoint", str(checkpoint), "--port", str(port)]
    command += ["--device", device, "--precision", precision]
    if max_length is not None:
        command += ["--max-length", str(max_length)]
    started = time.monotonic()
    with open(log_dir / "flask.log", "ab") as log:
        process = subprocess.Popen(command, cwd=paths.REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_first_answer(url, process, timeout, log_dir / "flask.log")
        yield Running(
            {"rest": Target("rest", url)},
            time.monotonic() - started,
            memory=lambda: {"process_mib": process_usage(process.pid).rss_mib},
            cpu_seconds=lambda: {"process": process_usage(process.pid).cpu_s},
        )
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_first_answer(url: str, process: subprocess.Popen, timeout: float, log: Path) -> None:
    def answered() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"the Flask baseline exited with {process.returncode}; see {log}")
        with contextlib.suppress(requests.ConnectionError):
            return requests.post(url, data=FIRST_REVIEW.encode(), timeout=60).status_code == 200
        return False

    if not wait_until(answered, timeout, interval_s=0.1):
        raise RuntimeError(f"the Flask baseline gave no answer in time; see {log}")


def describe_config(config: dict) -> str:
    handler = config.get("handler", {})
    return (
        f"{config.get('deviceType', 'cpu')}, batchSize {config['batchSize']}, "
        f"maxBatchDelay {config['maxBatchDelay']} ms, "
        f"workers {config['minWorkers']}, torch_threads {handler.get('torch_threads', 0)} (0 = cores / workers), "
        f"cpu_precision {handler.get('cpu_precision', 'auto')}, gpu_precision {handler.get('gpu_precision', 'fp16')}, "
        f"max_length {handler.get('max_length')}"
    )


@contextlib.contextmanager
def torchserve(
    checkpoint: Path,
    config: dict,
    run_dir: Path | None = None,
    properties: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[Running]:
    """A sandboxed TorchServe (serve/sandbox.py: the project's config.properties, token auth on)
    serving `checkpoint` archived with `config`, until the block ends; `properties` override
    config.properties keys, `env` is added to the environment of the frontend and its workers."""
    options = {"model_config": config, "properties": properties, "env": env, "timeout": 600}
    with sandbox(checkpoint, run_dir, **options) as server:
        server.client.predict(FIRST_REVIEW)
        cold_start = time.monotonic() - server.started_at
        headers = tuple(server.inference_headers().items())
        targets = {
            "rest": Target("rest", f"{server.endpoints.inference_url}/predictions/{paths.model_name()}", headers),
            "grpc": Target("grpc", server.endpoints.grpc_target, headers, paths.model_name()),
        }
        yield Running(
            targets,
            cold_start,
            memory=lambda: server.usage().memory(),
            cpu_seconds=lambda: server.usage().cpu_seconds(),
            worker_pids=server.worker_pids,
        )
