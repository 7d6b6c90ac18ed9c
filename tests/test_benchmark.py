"""The benchmark harness: its smoke run against the real systems (Flask baseline, TorchServe,
in-process core) with the tiny model, and the pure parts that turn samples into figures and
figures into decisions. Benchmarks are not timed tests: no figure is compared to a target here."""

from __future__ import annotations

import asyncio
import json
import math
import subprocess
import sys
import time

import pytest

from benchmarks import accuracy, tune
from benchmarks.loadgen import closed_loop, summarize
from benchmarks.results import ratios
from benchmarks.reviews import LENGTHS, NEGATIVE, POSITIVE, SEED_LENGTH, SEED_REVIEW, reviews
from review_sentiment import paths

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.mark.serving
def test_smoke_run_measures_all_three_systems(tiny_checkpoint, tmp_path):
    output = tmp_path / "smoke"
    command = [sys.executable, "-m", "benchmarks.benchmark", "--smoke", "--checkpoint", str(tiny_checkpoint)]
    done = subprocess.run(
        [*command, "--output", str(output)], cwd=paths.REPO, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]

    report = json.loads((output / "results.json").read_text())
    cells = {(r["system"], r["concurrency"]): r for r in report["rows"]}
    expected = {(s, c) for s in ("in-process", "flask", "torchserve-rest") for c in (1, 4)} | {("torchserve-grpc", 4)}
    assert set(cells) == expected
    for row in cells.values():
        assert row["chars"] == SEED_LENGTH
        assert row["requests"] > 0 and row["errors"] == 0, row
        assert row["req_per_s"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
    for name in ("in-process", "flask", "torchserve"):
        assert report["systems"][name]["cold_start_s"] > 0
    assert report["systems"]["torchserve"]["memory"]["frontend_mib"] > 0
    assert len(report["systems"]["torchserve"]["memory"]["workers_mib"]) == 1
    # With 1 and 4 clients only the lone-client ratio can be computed; the others say so.
    by_target = {t["target"]: t for t in report["ratios"]}
    lone = by_target["TorchServe p50, 1 client / in-process batch-1 p50"]
    # The verdict is the rule applied to this run's value, and the value is this run's two p50s.
    assert lone["value"] == pytest.approx(cells["torchserve-rest", 1]["p50_ms"] / cells["in-process", 1]["p50_ms"])
    assert lone["rule"] == "<= 1.3" and lone["pass"] is (lone["value"] <= 1.3)
    assert sum(t["value"] is None for t in report["ratios"]) == 2

    table = (output / "results.md").read_text()
    assert "| TorchServe gRPC | 667 | 4 |" in table and report["environment"]["cpu"] in table
    assert "| TorchServe REST | 667 | 1 |" in done.stdout and "| target (review of 667 chars) |" in done.stdout
    for plot in ("throughput_vs_length.png", "latency_vs_concurrency.png"):
        assert (output / plot).read_bytes()[:8] == PNG_MAGIC
        assert plot in report["plots"]


def test_summarize_counts_only_the_window():
    # (start, end, ok): one answer in the warm-up, three inside the window (one an error), one after it.
    samples = [(0.0, 0.5, True), (0.5, 1.5, True), (1.0, 2.0, False), (1.5, 2.5, True), (2.5, 3.5, True)]
    result = summarize(samples, window_start=1.0, stop_at=3.0)
    assert (result.requests, result.errors, result.seconds) == (3, 1, 2.0)
    assert result.req_per_s == pytest.approx(1.0)  # two good answers in two seconds
    assert result.p50_ms == pytest.approx(1000.0)


def test_summarize_ends_the_window_at_the_last_answer_when_a_budget_stopped_early():
    result = summarize([(0.0, 1.0, True), (1.0, 2.0, True)], window_start=0.0, stop_at=10.0)
    assert result.seconds == 2.0 and result.req_per_s == pytest.approx(1.0)
    empty = summarize([], 0.0, 1.0)
    assert empty.requests == 0 and math.isnan(empty.p50_ms) and empty.to_dict()["p50_ms"] is None


def test_closed_loop_stops_at_the_request_budget_and_times_each_request():
    async def request() -> str:
        await asyncio.sleep(0.01)
        return "answered"

    samples = asyncio.run(closed_loop([request, request], stop_at=time.monotonic() + 60, budget=5))
    assert len(samples) == 5 and all(outcome == "answered" and end > start for start, end, outcome in samples)


def test_reviews_are_deterministic_real_sentences_of_the_asked_length():
    assert reviews(SEED_LENGTH)[0] == SEED_REVIEW and len(SEED_REVIEW) == 667
    sentences = NEGATIVE + POSITIVE
    for length in LENGTHS:
        texts = reviews(length)
        assert texts == reviews(length) and len(set(texts)) == len(texts)
        assert all(length - 20 <= len(t) <= length for t in texts), (length, [len(t) for t in texts])
        if length != SEED_LENGTH:
            assert all(t.startswith(sentences) for t in texts)


def test_target_ratios_pass_and_fail_on_the_rule():
    def row(system, clients, req_per_s, p50):
        return {"system": system, "chars": 667, "concurrency": clients, "req_per_s": req_per_s, "p50_ms": p50}

    rows = [
        row("torchserve-rest", 16, 95.0, 200),
        row("in-process", 16, 100.0, 150),
        row("flask", 16, 10.0, 1500),
        row("torchserve-rest", 1, 20.0, 40.0),
        row("in-process", 1, 25.0, 30.0),
    ]
    verdicts = [(t["value"], t["pass"]) for t in ratios(rows)]
    assert verdicts == [(pytest.approx(0.95), True), (pytest.approx(9.5), False), (pytest.approx(4 / 3), False)]


def test_precision_rule_allows_only_drops_within_three_tenths_of_a_point():
    def acc(**values):
        return {name: {"accuracy": value, "reviews": 1000} for name, value in values.items()}

    results = {
        "fp32": acc(imdb=0.900, amazon=0.900),
        "bf16": acc(imdb=0.898, amazon=0.897),  # -0.2, -0.3 points
        "int8": acc(imdb=0.905, amazon=0.890),  # better on one set, -1.0 on the other
    }
    assert accuracy.eligible(results) == {"fp32": True, "bf16": True, "int8": False}
    precision_rows = [
        {"precision": "fp32", "batch_reviews_per_s": 40.0},
        {"precision": "bf16", "batch_reviews_per_s": 70.0},
        {"precision": "int8", "batch_reviews_per_s": 90.0},
    ]
    report = {"eligible": accuracy.eligible(results)}
    assert tune.pick_precision(precision_rows, report) == "bf16"
    assert tune.pick_precision(precision_rows, None) is None


def test_server_pick_prefers_low_lone_latency_among_the_fastest():
    def variant(name, c16, c1_p50):
        return {"name": name, "clients": {16: {"req_per_s": c16}, 1: {"p50_ms": c1_p50}}}

    rows = [variant("slow", 50.0, 20.0), variant("delay20", 60.0, 45.0), variant("delay5", 59.0, 26.0)]
    assert tune.pick_server(rows)["name"] == "delay5"
