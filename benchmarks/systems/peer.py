"""What the peer servers share (Triton through PyTriton, LitServe, BentoML, Ray Serve): each is a
small adapter module beside this one over the same `review_sentiment.core` classifier, run as a
server process from the peers' own venv (`.venv-peers`, built by `make bench-peers` from
requirements-peers.txt; never the serving image's or `make test`'s).

Two halves. In the harness (the main venv): `PeerServer`, a `System` that starts an adapter's
`main()` with the peers' python on free ports, waits for its first answer and reads its
processes by role. In the server (the peers' venv): `Layout` (TorchServe's batching and workers,
from the same model-config), `load_classifier` and `answer` (one JSON answer per review, the
handler's own), so that every system computes the same thing and only the serving differs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sysconfig
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import requests

from benchmarks.systems import FIRST_REVIEW, Processes, Running
from review_sentiment import paths
from review_sentiment.client.load_driver import Target
from review_sentiment.core.offline import OFFLINE_ENV
from review_sentiment.endpoints import Endpoints
from review_sentiment.waiting import wait_until

PEERS_VENV = paths.REPO / ".venv-peers"
JSON_TYPE = "application/json"


def json_body(text: str) -> bytes:
    """The one request every system of the peer comparison gets: {"text": review}."""
    return json.dumps({"text": text}).encode("utf-8")


def peer_python() -> Path:
    return PEERS_VENV / "bin" / "python"


def missing() -> str | None:
    """Why the peers cannot run here, or None."""
    if not peer_python().exists():
        return f"no peers venv at {PEERS_VENV} (`make bench-peers` builds it)"
    return None


@dataclass(frozen=True)
class Layout:
    """TorchServe's batching and worker layout, which every peer copies as closely as it can."""

    batch_size: int
    delay_ms: float
    workers: int
    threads: int  # torch threads per worker
    device: str = "cpu"  # "cuda" where the model-config says deviceType gpu (config/model-config.gpu.yaml)

    @classmethod
    def of(cls, config: dict) -> Layout:
        workers = int(config["minWorkers"])
        threads = int(config.get("handler", {}).get("torch_threads") or 0) or max(1, (os.cpu_count() or 1) // workers)
        device = "cuda" if config.get("deviceType") == "gpu" else "cpu"
        return cls(int(config["batchSize"]), float(config["maxBatchDelay"]), workers, threads, device)


# A process's role from its command line (and name): "frontend", "workers", or another word.
Classify = Callable[[psutil.Process], str]


def roles(root: int, classify: Classify) -> Processes:
    """The root process and all below it, grouped by role; every role a list of pids."""
    found: dict[str, list[int]] = {}
    with contextlib.suppress(psutil.Error):
        top = psutil.Process(root)
        for process in [top, *top.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                found.setdefault(classify(process), []).append(process.pid)
    return found


def cmdline(process: psutil.Process) -> str:
    return " ".join(process.cmdline()) or process.name()


@dataclass
class PeerServer:
    """A peer's server in its own process group, from the peers' venv, for the block."""

    name: str
    title: str
    module: str  # the adapter: `python -m <module>` serves
    path: str  # REST path of a prediction
    classify: Classify
    config: dict  # TorchServe's model-config: the layout and the handler's settings
    grpc: bool = False  # also serves gRPC (its Running gets a "grpc" target)
    clients: tuple[str, ...] = ("wrk",)
    lengths: tuple[int, ...] | None = None
    env: dict[str, str] = field(default_factory=dict)
    body: Callable[[str], bytes] = json_body  # a review as the request's JSON

    def command(self, checkpoint: Path, config_file: Path, endpoints: Endpoints) -> list[str]:
        command = [str(peer_python()), "-m", self.module, "--checkpoint", str(checkpoint)]
        command += ["--config", str(config_file), "--port", str(endpoints.inference_port)]
        return command + ["--grpc-port", str(endpoints.grpc_inference_port)] if self.grpc else command

    def environment(self) -> dict[str, str]:
        # The repository on the path (the adapters import the core from it, Ray's workers too); the
        # peers' python's own libpython first (PyTriton's stub would load the system's otherwise).
        libdir = sysconfig.get_config_var("LIBDIR") or ""
        library_path = ":".join(p for p in (libdir, os.environ.get("LD_LIBRARY_PATH", "")) if p)
        quiet = {"RAY_USAGE_STATS_ENABLED": "0", "BENTOML_DO_NOT_TRACK": "True", "PYTHONUNBUFFERED": "1"}
        extra = {"PYTHONPATH": str(paths.REPO), "LD_LIBRARY_PATH": library_path, **OFFLINE_ENV, **quiet}
        return {**os.environ, **extra, **self.env}

    def make_running(self, endpoints: Endpoints, cold_start: float, root: int) -> Running:
        url = f"http://127.0.0.1:{endpoints.inference_port}{self.path}"
        targets = {"rest": Target("rest", url, content_type=JSON_TYPE, body=self.body)}
        if self.grpc:
            targets["grpc"] = Target("grpc", endpoints.grpc_target, model="sentiment")
        return Running(targets, cold_start, lambda: roles(root, self.classify))

    @contextlib.contextmanager
    def start(self, checkpoint: Path, work: Path, timeout: float = 300) -> Iterator[Running]:
        if reason := missing():
            raise RuntimeError(reason)
        work.mkdir(parents=True, exist_ok=True)
        config_file = work / "model-config.json"
        config_file.write_text(json.dumps(self.config))
        endpoints = Endpoints.free()
        log = work / f"{self.name}.log"
        started = time.monotonic()
        with open(log, "ab") as output:
            process = subprocess.Popen(
                self.command(Path(checkpoint).resolve(), config_file, endpoints),
                cwd=work,
                env=self.environment(),
                stdout=output,
                stderr=subprocess.STDOUT,
                # Its own process group, to be stopped whole (Ray's and Triton's helpers too), but not
                # its own session: with the kernel's autogroup scheduling a new session is a new
                # scheduling group, which on a shared machine gets a whole share of the CPU to itself,
                # while TorchServe and the load client share the harness's (docs/benchmarks.md).
                process_group=0,
            )
        try:
            url = f"http://127.0.0.1:{endpoints.inference_port}{self.path}"

            def answered() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"{self.title} exited with {process.returncode}; see {log}")
                with contextlib.suppress(requests.RequestException):
                    reply = requests.post(url, data=self.body(FIRST_REVIEW), headers={"Content-Type": JSON_TYPE})
                    return reply.status_code == 200 and b'"label"' in reply.content
                return False

            if not wait_until(answered, timeout, interval_s=0.25):
                raise RuntimeError(f"{self.title} gave no answer in {timeout:.0f} s; see {log}")
            yield self.make_running(endpoints, time.monotonic() - started, process.pid)
        finally:
            stop_group(process)


def stop_group(process: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM to the server's process group, SIGKILL to whatever of it is left after `grace_s`
    (the group and every descendant seen before, which may have made groups of their own)."""
    try:
        family = [process.pid, *(p.pid for p in psutil.Process(process.pid).children(recursive=True))]
    except psutil.Error:
        family = [process.pid]
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=grace_s)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    for pid in family:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


# --- the server side, in the peers' venv ---


def server_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--config", required=True, help="TorchServe's model-config as JSON (the harness writes it)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--grpc-port", type=int)
    return parser.parse_args()


def read_config(path: str) -> dict:
    return json.loads(Path(path).read_text())


def load_classifier(checkpoint: str, config: dict):
    """The core with the handler's settings and one worker's torch threads (or the GPU), as a
    TorchServe worker."""
    from review_sentiment.core.offline import apply_offline

    apply_offline()
    from review_sentiment.core.classifier import SentimentClassifier
    from review_sentiment.core.settings import InferenceSettings

    settings = InferenceSettings.from_sources(config.get("handler"))
    layout = Layout.of(config)
    device = "cuda:0" if layout.device == "cuda" else "cpu"  # every worker on the one GPU, as TorchServe's
    return SentimentClassifier.load(checkpoint, settings, device, workers=layout.workers)


def answer(outcome) -> tuple[int, dict]:
    """(HTTP status, JSON answer) of one outcome, exactly as the TorchServe handler answers it."""
    from review_sentiment.core.errors import RequestError
    from review_sentiment.status_codes import error_body, http_status

    if isinstance(outcome, RequestError):
        return http_status(outcome.kind), error_body(outcome.kind, outcome.message)
    return 200, outcome.to_dict()


def classify_json(classifier, payloads: list) -> list[tuple[int, dict]]:
    """One model call for a batch of decoded JSON requests ({"text": ...}) or raw bodies."""
    types = [JSON_TYPE if isinstance(p, bytes | bytearray) else None for p in payloads]
    outcomes, _ = classifier.classify(payloads, types)
    return [answer(o) for o in outcomes]
