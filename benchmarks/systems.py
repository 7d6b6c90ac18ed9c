"""Start and stop the served systems under test, each on free loopback ports, and read their
cold start (start command to first answer) and resident memory."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests
import yaml

from benchmarks.loadgen import Target
from review_sentiment import paths
from review_sentiment.client.keys import KeyFile
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.server import TorchServeProcess, override_properties, worker_processes
from review_sentiment.waiting import wait_until

FIRST_REVIEW = "Arrived quickly and works as described."
MIB = 2**20


@dataclass
class Running:
    name: str
    targets: dict[str, Target]
    cold_start_s: float
    pids: dict[str, int] = field(default_factory=dict)

    def memory(self) -> dict:
        """Resident memory now, in MiB: the Java frontend and each worker, or the one process."""
        if "frontend" in self.pids:
            frontend = psutil.Process(self.pids["frontend"])
            workers = worker_processes(frontend.pid)
            return {
                "frontend_mib": frontend.memory_info().rss / MIB,
                "workers_mib": [w.memory_info().rss / MIB for w in workers],
            }
        return {"process_mib": psutil.Process(self.pids["process"]).memory_info().rss / MIB}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU time used so far (user + system, all threads): the frontend and its workers
        together, or the one process. Differences over a window give CPU per request."""
        if "frontend" in self.pids:
            frontend = psutil.Process(self.pids["frontend"])
            return {"frontend": _cpu(frontend), "workers": sum(_cpu(w) for w in worker_processes(frontend.pid))}
        return {"process": _cpu(psutil.Process(self.pids["process"]))}


def _cpu(process: psutil.Process) -> float:
    times = process.cpu_times()
    return times.user + times.system


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
        yield Running("flask", {"rest": Target("rest", url)}, time.monotonic() - started, {"process": process.pid})
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


def model_config(base: Path = paths.MODEL_CONFIG, **overrides) -> dict:
    """A model-config.yaml as a dict, with top-level overrides and `handler` overrides merged."""
    config = yaml.safe_load(Path(base).read_text())
    handler = {**config.get("handler", {}), **overrides.pop("handler", {})}
    return {**config, **overrides, "handler": handler}


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
    work: Path,
    name: str = "default",
    properties: dict[str, str] | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Running]:
    """TorchServe with the project's config.properties (token auth on; `properties` override its
    keys) serving `checkpoint` archived with `config`, with `env` added to the environment of the
    frontend and its workers, in its own run folder under `work`, until the block ends."""
    config_file = work / f"model-config-{name}.yaml"
    work.mkdir(parents=True, exist_ok=True)
    config_file.write_text(yaml.safe_dump(config))
    store = work / f"store-{name}"
    build_archive(checkpoint, store, paths.MODEL_NAME, config_file)
    server_config = paths.CONFIG_DIR / "config.properties"
    if properties:
        server_config = work / f"config-{name}.properties"
        server_config.write_text(override_properties((paths.CONFIG_DIR / "config.properties").read_text(), properties))
    process = TorchServeProcess(run_dir=work / f"run-{name}", model_store=store, config_file=server_config, env=env)
    started = time.monotonic()
    endpoints = process.start(f"{paths.MODEL_NAME}={paths.MODEL_NAME}.mar", Endpoints.free(), timeout=600)
    try:
        TorchServeClient.for_run_dir(process.run_dir).predict(FIRST_REVIEW)
        cold_start = time.monotonic() - started
        headers = tuple(KeyFile(process.run_dir / "key_file.json").headers("inference").items())
        targets = {
            "rest": Target("rest", f"{endpoints.inference_url}/predictions/{paths.MODEL_NAME}", headers),
            "grpc": Target("grpc", endpoints.grpc_target, headers, paths.MODEL_NAME),
        }
        yield Running("torchserve", targets, cold_start, {"frontend": process.pid() or 0})
    finally:
        process.stop()
