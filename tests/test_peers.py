"""The peer servers of `--peers` (benchmarks/systems/*_peer.py): a smoke test per peer against
the tiny model (a few requests, answers equal to the core's), run by `make test-peers` where the
peers' venv exists (`-m peers`; skipped with the reason where .venv-peers is absent, and left
out of `make test`), and the pure parts of the comparison (its table, goal and plot), which run
everywhere."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from benchmarks import peers, peers_report
from benchmarks.systems import peer
from review_sentiment.client.load_driver import Window
from review_sentiment.serve.model_config import model_config

REVIEWS = ["I love it, works great.", "Terrible. Broke after a day.", "It is fine, I guess."] * 3


@pytest.fixture(scope="module")
def core_answers(tiny_checkpoint) -> list[dict]:
    from review_sentiment.core.classifier import SentimentClassifier
    from review_sentiment.core.settings import InferenceSettings

    settings = InferenceSettings.from_sources(model_config()["handler"])
    classifier = SentimentClassifier.load(tiny_checkpoint, settings)
    return [p.to_dict() for p in classifier.predict(REVIEWS)]


def _answer(reply: requests.Response) -> dict:
    """A peer's answer in the handler's shape: BentoML's batch of one unwrapped, Triton's
    probabilities (a JSON string output) read."""
    assert reply.status_code == 200, reply.text
    body = reply.json()
    body = body[0] if isinstance(body, list) else body
    if isinstance(body.get("probabilities"), str):
        body["probabilities"] = json.loads(body["probabilities"])
    return {key: body[key] for key in ("label", "score", "probabilities")}


@pytest.mark.peers
@pytest.mark.skipif(peer.missing() is not None, reason=str(peer.missing()))
@pytest.mark.parametrize("name", peers.PEERS)
def test_each_peer_answers_as_the_core(name, tiny_checkpoint, tmp_path, core_answers):
    (system,) = peers.systems(model_config(handler={"explain": False}), [name])
    with system.start(tiny_checkpoint, tmp_path) as running:
        target = running.targets["rest"]

        def ask(text: str) -> dict:
            reply = requests.post(target.address, data=target.body(text), headers={"Content-Type": target.content_type})
            return _answer(reply)

        with ThreadPoolExecutor(len(REVIEWS)) as pool:  # at once: the server batches them
            answers = list(pool.map(ask, REVIEWS))
        for got, expected in zip(answers, core_answers, strict=True):
            assert got["label"] == expected["label"]
            assert got["score"] == pytest.approx(expected["score"], abs=1e-5)
            assert got["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-5)
        for client in system.clients:  # wrk where installed, and Triton's gRPC
            if client == "wrk" and not shutil.which("wrk"):
                continue
            result = peers.cell(running, client, REVIEWS, 2, Window(0.0, 2.0))
            assert result.requests > 0 and result.errors == 0, (client, result)
            assert result.cpu_ms_per_request["workers"] > 0, result
        assert running.processes()["workers"], running.processes()


def _line(system, chars, clients, req_per_s, p50, client="wrk") -> dict:
    cpu = {"frontend": 1.0, "workers": 10.0}
    row = {"system": system, "client": client, "chars": chars, "concurrency": clients, "errors": 0}
    return row | {"req_per_s": req_per_s, "p50_ms": p50, "p95_ms": p50, "p99_ms": p50, "cpu_ms_per_request": cpu}


def test_the_goal_compares_torchserve_with_the_fastest_peer_of_each_figure():
    rows = []
    for run, scale in enumerate((1.0, 1.1)):
        rows += [
            _line("torchserve", 100, 16, 80 * scale, 100) | {"round": run},
            _line("triton", 100, 16, 100 * scale, 90) | {"round": run},
            _line("litserve", 100, 16, 90 * scale, 80) | {"round": run},
            _line("torchserve", 100, 1, 30, 36) | {"round": run},
            _line("triton", 100, 1, 40, 25) | {"round": run},
            _line("litserve", 100, 1, 35, 30) | {"round": run},
            _line("torchserve", 100, 16, 50, 200, client="grpc") | {"round": run},
        ]
    lines = peers.summary(rows)
    first = lines[0]
    assert (first["system"], first["concurrency"], first["client"]) == ("torchserve", 16, "wrk")
    assert first["req_per_s"] == pytest.approx(84.0) and first["rounds_req_per_s"] == [80.0, 88.0]
    checks = {c["target"].split(", ")[1]: c for c in peers.ratios(lines)}
    throughput, latency = checks["requests/s at 16 clients"], checks["p50 at a lone client"]
    assert (throughput["peer"], throughput["pass"]) == ("triton", False) and throughput["value"] == pytest.approx(0.8)
    assert (latency["peer"], latency["pass"]) == ("triton", False) and latency["value"] == pytest.approx(36 / 25)
    assert peers.widest_gap(peers.ratios(lines)) == throughput  # 20% behind: profiled


def test_the_report_names_every_system_and_draws_the_plot(tmp_path):
    rows = [
        _line(s, n, c, 50.0, 20.0) | {"round": 0}
        for s in ("torchserve", "bentoml")
        for n in (100, 667)
        for c in (16, 1)
    ]
    lines = peers.summary(rows)
    env = {"cpu": "CPU", "cores": 2, "memory_gib": 24, "date": "2026-12-03", "python": "3.11", "torch": "2.13"}
    env |= {"transformers": "5", "torchserve": "0.12.0", "flask": "3"}
    figures = {
        "summary": lines, "ratios": peers.ratios(lines), "rounds": 1, "window": {"warmup_s": 1, "duration_s": 2},
        "systems": {"torchserve": {"title": "TorchServe 0.12.0", "cold_start_s": [9.0]}},
        "settings": {name: peers.SETTINGS[name] for name in ("torchserve", "bentoml")},
        "failed": {"bentoml": "RuntimeError: no\nlast log line"}, "load_average": {"start": [1.0], "end": [2.0]},
        "ceiling": [_line("torchserve", 100, 16, 900.0, 10.0)], "environment": env,
    }  # fmt: skip
    text = peers_report.markdown(figures)
    assert "| TorchServe 0.12.0 REST (wrk) | 100 | 16 | 50.0 | 50.0 | 20 |" in text
    assert "| bentoml REST (wrk) | 667 | 1 |" in text and "last log line" in text
    assert "frontend 1.00, workers 10.00" in text and "max_batch_size 8" in text
    assert peers_report.plot(figures, tmp_path) == ["peers.png"]
    assert (tmp_path / "peers.png").read_bytes()[:4] == b"\x89PNG"


def test_every_peer_copies_torchserves_layout_and_sends_json():
    layout = peer.Layout.of(model_config())
    config = model_config()
    assert (layout.batch_size, layout.delay_ms, layout.workers) == (
        config["batchSize"],
        config["maxBatchDelay"],
        config["minWorkers"],
    )
    assert json.loads(peer.json_body('say "hi"')) == {"text": 'say "hi"'}
    assert set(peers.SETTINGS) == set(peers.SYSTEMS)
    assert peers.package_of("forward (torch/nn/modules/linear.py:125)") == "model forward (torch)"
    assert peers.package_of("run (/usr/lib/python3.11/asyncio/events.py:80)") == "asyncio"
    assert peers.package_of("handle (litserve/server.py:10)") == "litserve"
