"""Rollout and rollback on a real TorchServe, under load, with nothing failed.

Two tiny random checkpoints (training/tiny_model.py, seeds 1 and 2) stand for the old and the
new version; the accuracy gate is checked with the released models (v1 serving, v2 rolled out;
a random model refused). Figures (requests, failures, p99 around each switch, resident memory
per version) go to tests/output/rollout.json.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import requests

from review_sentiment import paths
from review_sentiment.client.grpc_client import GrpcClient
from review_sentiment.client.load_driver import closed_loop
from review_sentiment.client.refusals import ServiceError
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.serve.model_config import model_config
from review_sentiment.serve.rollout import Operator, RolloutError
from review_sentiment.serve.rollout import main as rollout_main
from review_sentiment.serve.sandbox import Sandbox, sandbox
from review_sentiment.serve.versions import RELEASE_FILE, ArchiveInfo
from review_sentiment.waiting import wait_until
from training.tiny_model import make_tiny_checkpoint

pytestmark = pytest.mark.serving

CLIENTS = 16  # 8 REST, 8 gRPC
FIGURES = Path(__file__).parent / "output" / "rollout.json"
# Two workers per version, as the project's model-config has, so that the previous version's
# scale-down to its standby worker happens under load.
MODEL_CONFIG = {
    "minWorkers": 2,
    "maxWorkers": 2,
    "batchSize": 8,
    "maxBatchDelay": 5,
    "responseTimeout": 60,
    "handler": {"max_length": 64, "torch_threads": 1, "warmup": True, "explain": False},
}
TEXTS = [
    "Lovely colour and it lasts all day.",
    "Broke after a week, returning it.",
    "Okay for the price.",
    "The pump leaks and the smell is awful.",
    "Best moisturiser I have tried in years, my skin loves it.",
]


def released(path: Path, version: str) -> Path:
    (path / RELEASE_FILE).write_text(version + "\n")
    return path


@pytest.fixture(scope="module")
def figures() -> Iterator[dict]:
    found: dict = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    yield found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2) + "\n")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("versions")
    return {
        name: released(make_tiny_checkpoint(folder / name, seed=seed), name)
        for name, seed in (("tiny-1", 1), ("tiny-2", 2), ("tiny-3", 3))
    }


@pytest.fixture(scope="module")
def versioned(tmp_path_factory, tiny) -> Iterator[Sandbox]:
    """TorchServe serving tiny-1, with the project's config.properties (the model API on)."""
    with sandbox(tiny["tiny-1"], tmp_path_factory.mktemp("run"), model_config=MODEL_CONFIG) as server:
        yield server


@dataclass
class Steps:
    """When each step of a rollout or rollback started (monotonic clock), and what was said."""

    started: dict[str, list[float]]
    said: list[str]

    @classmethod
    def new(cls) -> Steps:
        return cls({}, [])

    def on_step(self, name: str) -> None:
        self.started.setdefault(name, []).append(time.monotonic())


def operator(server: Sandbox, steps: Steps, **options) -> Operator:
    return Operator(server.client, server.model_store, say=steps.said.append, on_step=steps.on_step, **options)


@dataclass(frozen=True)
class Answer:
    client: int
    protocol: str
    ok: bool  # a prediction, HTTP 200 (gRPC OK)
    model: str | None = None
    version: str | None = None
    error: str = ""


class Traffic:
    """CLIENTS clients of the project (TorchServeClient, GrpcClient), each request sent once (no
    retries: a failure shows), in the load driver's closed loop until stopped."""

    def __init__(self, run_dir: Path):
        half = CLIENTS // 2
        self.clients = [TorchServeClient.for_run_dir(run_dir, retry_delays=()) for _ in range(half)]
        self.clients += [GrpcClient.for_run_dir(run_dir, retry_delays=()) for _ in range(CLIENTS - half)]
        self.samples: list[tuple[float, float, Answer]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _call(self, k: int, text: str) -> Answer:
        client = self.clients[k]
        protocol = "gRPC" if isinstance(client, GrpcClient) else "REST"
        try:
            body = client.predict(text)
        except (ServiceError, requests.RequestException) as error:
            return Answer(k, protocol, False, error=f"{type(error).__name__}: {error}")
        return Answer(k, protocol, "label" in body, body.get("model"), body.get("model_version"))

    def _run(self) -> None:
        pool = ThreadPoolExecutor(max_workers=CLIENTS)

        def client(k: int) -> Callable:
            count = iter(range(k, 10**9, CLIENTS))

            async def request() -> Answer:
                text = TEXTS[next(count) % len(TEXTS)]
                return await asyncio.get_running_loop().run_in_executor(pool, self._call, k, text)

            return request

        clients = [client(k) for k in range(CLIENTS)]
        self.samples = asyncio.run(closed_loop(clients, time.monotonic() + 1800, stop=self._stop.is_set))
        pool.shutdown()

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=120)
        for c in self.clients:
            if isinstance(c, GrpcClient):
                c.close()

    def between(self, start: float, end: float) -> list[tuple[float, float, Answer]]:
        """The requests answered in [start, end]."""
        return [s for s in self.samples if start <= s[1] <= end]


def p99_ms(samples: list[tuple[float, float, Answer]]) -> float | None:
    latencies = [(end - start) * 1000 for start, end, _ in samples]
    return round(float(np.percentile(latencies, 99)), 1) if latencies else None


def window(traffic: Traffic, start: float, end: float) -> dict:
    inside = traffic.between(start, end)
    return {
        "requests": len(inside),
        "failed": sum(not a.ok for *_, a in inside),
        "p99_ms": p99_ms(inside),
        "seconds": round(end - start, 1),
    }


def versions_of(samples: list[tuple[float, float, Answer]]) -> set[str | None]:
    return {answer.version for *_, answer in samples}


def test_rollout_and_rollback_under_16_clients_fail_no_request(versioned, tiny, figures):
    steps = Steps.new()
    op = operator(versioned, steps)
    with Traffic(versioned.run_dir) as traffic:
        time.sleep(3)
        rollout_start = time.monotonic()
        op.rollout(tiny["tiny-2"], model_config=versioned.run_dir / "model-config.yaml")
        rollout_end = time.monotonic()
        time.sleep(3)
        rollback_start = time.monotonic()
        op.rollback()
        rollback_end = time.monotonic()
        time.sleep(3)
    answers = [a for *_, a in traffic.samples]
    failed = [a for a in answers if not a.ok]
    assert not failed, f"{len(failed)} of {len(answers)} requests failed, e.g. {failed[:3]}"
    assert {a.protocol for a in answers} == {"REST", "gRPC"}
    assert {a.model for a in answers} == {"sentiment"}

    # Answers switch at set-default, each naming its version: tiny-1, then tiny-2, then tiny-1.
    (switch_out, switch_back), (standby_out, standby_back) = steps.started["switch"], steps.started["standby"]
    before = [s for s in traffic.samples if s[1] < switch_out]
    served_new = [s for s in traffic.samples if standby_out < s[0] and s[1] < switch_back]
    after = [s for s in traffic.samples if s[0] > standby_back]
    assert versions_of(before) == {"tiny-1"}
    assert served_new and versions_of(served_new) == {"tiny-2"}
    assert after and versions_of(after) == {"tiny-1"}
    for client in range(CLIENTS):  # each client sees old, then new, then old: never back and forth
        seen = [a.version for _, _, a in traffic.samples if a.client == client]  # in the order answered
        assert [v for i, v in enumerate(seen) if i == 0 or v != seen[i - 1]] == ["tiny-1", "tiny-2", "tiny-1"]

    # Per-version counts in Prometheus, from the handler's metrics (TorchServe's own call the
    # requests to /predictions/sentiment version "default").
    metrics = versioned.client.metrics()
    for version in ("tiny-1", "tiny-2"):
        assert f'AnsweredRequests{{ModelVersion="{version}",ModelName="sentiment"' in metrics
        assert f'InferenceTime_count{{ModelVersion="{version}",ModelName="sentiment"' in metrics

    figures["tiny_16_clients"] = {
        "clients": CLIENTS,
        "requests": len(answers),
        "failed": len(failed),
        "by_version": {v: sum(a.version == v for a in answers) for v in ("tiny-1", "tiny-2")},
        "before_rollout": window(traffic, traffic.samples[0][1], rollout_start),
        "rollout": window(traffic, rollout_start, rollout_end),
        "rollout_switch": window(traffic, switch_out - 2, standby_out + 2),
        "rollback": window(traffic, rollback_start, rollback_end),
        "rollback_switch": window(traffic, switch_back - 2, standby_back + 2),
        "rollout_s": round(rollout_end - rollout_start, 1),
        "rollback_s": round(rollback_end - rollback_start, 1),
    }
    described = op.describe()
    assert described[0] == "model sentiment: 2 version(s), default tiny-1"
    assert "tiny-2" in described[2] and "standby  1 of 1 workers READY" in described[2]
    said = "\n".join(steps.said)
    for words in ("1/5 register sentiment-tiny-2.mar", "3/5 canary", "canary passed", "4/5 make version tiny-2"):
        assert words in said


def test_a_worker_killed_during_the_canary_aborts_cleanly(versioned, tiny):
    """The new version's worker is killed as the canary starts: rollout stops, unregisters the
    new version, and the served version stays as it was and keeps answering."""
    steps = Steps.new()
    op = operator(versioned, steps)
    served = op.versions()[0].version

    def kill_new_worker(name: str) -> None:
        steps.on_step(name)
        if name == "canary":
            for pid in op.version("tiny-3").pids:
                os.kill(pid, signal.SIGKILL)

    op.on_step = kill_new_worker
    with pytest.raises(RolloutError, match="canary failed") as stopped:
        op.rollout(tiny["tiny-3"], model_config=versioned.run_dir / "model-config.yaml")
    assert "worker" in str(stopped.value) or "HTTP" in str(stopped.value)
    assert [v.version for v in op.versions()][0] == served
    assert "tiny-3" not in [v.version for v in op.versions()]
    assert versioned.client.predict("still served")["model_version"] == served
    assert f"unregister version tiny-3; version {served} stays the default" in "\n".join(steps.said)


def test_what_rollout_refuses(versioned, tiny, tmp_path, capsys):
    op = operator(versioned, Steps.new())
    served = op.versions()[0].version
    with pytest.raises(RolloutError, match="already registered"):
        op.rollout(tiny[served])
    # An archive of another model's name.
    other = tmp_path / "other"
    from review_sentiment.serve.archive import build_archive

    mar = build_archive(tiny["tiny-3"], other, "intruder", versioned.run_dir / "model-config.yaml")
    with pytest.raises(RolloutError, match="archive of model 'intruder'"):
        op.rollout(mar)
    with pytest.raises(RolloutError, match="version tiny-9 is not registered"):
        op.rollback(to="tiny-9")
    assert [v.version for v in op.versions()][0] == served
    # The command says it in words and exits 1.
    where = ["--run-dir", str(versioned.run_dir), "--model-store", str(versioned.model_store)]
    assert rollout_main(["rollout", str(tiny[served]), *where]) == 1
    assert f"rollout stopped: version {served} is already registered" in capsys.readouterr().err
    assert rollout_main(["describe", *where]) == 0
    registered = len(op.versions())  # run alone, only tiny-1; after the rollout test, tiny-2 too
    assert capsys.readouterr().out.startswith(f"model sentiment: {registered} version(s), default {served}")


def test_archive_carries_release_name_and_checkpoint_sha256(tiny, tmp_path):
    from review_sentiment.serve.archive import build_archive
    from review_sentiment.serve.versions import checkpoint_sha256

    mar = build_archive(tiny["tiny-2"], tmp_path, "sentiment", paths.MODEL_CONFIG)
    info = ArchiveInfo.read(mar)
    assert (info.model_name, info.version) == ("sentiment", "tiny-2")
    assert info.checkpoint_sha256 == checkpoint_sha256(tiny["tiny-2"])
    assert info.workers == (2, 2)  # the project's model-config, packed in the archive


def rss_by_version(op: Operator) -> dict[str, dict]:
    """Resident memory of each version's workers, in MiB, as `describe` reads it."""
    return {v.version: {"workers": len(v.pids), "rss_mib": round(v.rss_mib() or 0.0, 1)} for v in op.versions()}


def test_released_models_pass_the_accuracy_gate_and_a_random_one_does_not(tmp_path, tiny, figures):
    """v1 served as the project serves it (its model-config: 2 workers, one torch thread each on
    these 2 cores); v2 rolled out beside it passes the canary; a random model is refused by the
    accuracy gate. The workers' resident memory is measured with both versions up, and after."""
    config = model_config(paths.MODEL_CONFIG, handler={"torch_threads": 1})
    with sandbox(paths.REPO / "models" / "review-sentiment-v1", tmp_path / "run", model_config=config) as server:
        steps = Steps.new()
        op = operator(server, steps)
        assert wait_until(lambda: op.versions()[0].ready == 2, 240), "v1's second worker never got READY"
        memory: dict[str, dict] = {"one_version": rss_by_version(op)}

        def measure(name: str) -> None:
            steps.on_step(name)
            if name == "switch":  # both versions at full strength, before the old one's scale-down
                memory["two_versions"] = rss_by_version(op)

        op.on_step = measure
        started = time.monotonic()
        new = op.rollout(
            paths.REPO / "models" / "review-sentiment-v2", model_config=server.run_dir / "model-config.yaml"
        )
        rollout_s = time.monotonic() - started
        memory["after_rollout"] = rss_by_version(op)
        assert new.version == "v2" and new.default
        assert server.client.predict("Works great.")["model_version"] == "v2"
        accuracy = next(line for line in steps.said if "sample accuracy" in line)

        op.on_step = steps.on_step
        with pytest.raises(RolloutError, match="less accurate than v2"):
            op.rollout(tiny["tiny-1"], model_config=server.run_dir / "model-config.yaml")
        assert [v.version for v in op.versions()] == ["v2", "v1"]
        refused = next(line for line in reversed(steps.said) if "sample accuracy" in line)

    v1_workers = memory["one_version"]["v1"]
    v2_workers = memory["two_versions"]["v2"]
    figures["released_v1_to_v2"] = {
        "rollout_s": round(rollout_s, 1),
        "sample_accuracy": accuracy.strip(),
        "random_model_refused": refused.strip(),
        "memory_mib": memory,
        "extra_rss_mib_per_version": v2_workers["rss_mib"],
        "rss_mib_per_worker": round(v2_workers["rss_mib"] / v2_workers["workers"], 1),
        "standby_rss_mib": memory["after_rollout"]["v1"]["rss_mib"],
    }
    assert v1_workers["workers"] == 2 and v2_workers["workers"] == 2
    assert memory["after_rollout"]["v1"]["workers"] == 1  # standby: one worker kept for rollback
