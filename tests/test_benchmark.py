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

from benchmarks import precision, student_shapes, sweep
from benchmarks.matrix import ratios
from benchmarks.reviews import LENGTHS, NEGATIVE, POSITIVE, SEED_LENGTH, SEED_REVIEW, reviews
from review_sentiment import paths
from review_sentiment.client.load_driver import closed_loop, summarize

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
    both = {(s, c) for s in ("in-process", "flask", "flask-seed", "torchserve-wrk") for c in (1, 4)}
    # REST through the Python client only beside gRPC: wrk drives the REST cells.
    assert set(cells) == both | {("torchserve-rest", 4), ("torchserve-grpc", 4)}
    for row in cells.values():
        assert row["chars"] == SEED_LENGTH
        assert row["requests"] > 0 and row["errors"] == 0, row
        assert row["req_per_s"] > 0 and 0 < row["p50_ms"] <= row["p95_ms"] <= row["p99_ms"], row
    for name in ("in-process", "flask", "flask-seed", "torchserve"):
        assert report["systems"][name]["cold_start_s"] > 0
    # wrk's cells carry CPU per request of the frontend, the worker and wrk itself; in-process its own.
    for clients in (1, 4):
        cpu = cells["torchserve-wrk", clients]["cpu_ms_per_request"]
        assert set(cpu) == {"frontend", "workers", "client"} and all(v > 0 for v in cpu.values()), cpu
        assert cells["in-process", clients]["cpu_ms_per_request"]["process"] > 0
    assert report["systems"]["torchserve"]["memory"]["frontend_mib"] > 0
    assert report["systems"]["flask"]["memory"]["process_mib"] > 0
    # One resident size per worker of the default layout (config/model-config.yaml).
    workers = report["server_config"]["model_config"]["maxWorkers"]
    assert len(report["systems"]["torchserve"]["memory"]["workers_mib"]) == workers
    # With 1 and 4 clients only the lone-client ratio can be computed; the others say so.
    lone = next(t for t in report["ratios"] if t["target"].startswith("TorchServe p50") and t["chars"] == SEED_LENGTH)
    # The verdict is the rule applied to this run's value, and the value is this run's two p50s (wrk's cell).
    assert lone["value"] == pytest.approx(cells["torchserve-wrk", 1]["p50_ms"] / cells["in-process", 1]["p50_ms"])
    assert lone["rule"] == "<= 1.3" and lone["pass"] is (lone["value"] <= 1.3)
    assert sum(t["value"] is None for t in report["ratios"]) == len(report["ratios"]) - 1

    table = (output / "results.md").read_text()
    assert "| TorchServe gRPC | 667 | 4 |" in table and report["environment"]["cpu"] in table
    assert "| TorchServe REST (wrk) | 667 | 1 |" in done.stdout and "| target | review chars |" in done.stdout
    assert "| Flask + pipeline, as the seed ran it (fp32, 512 tokens) | 667 | 4 |" in table
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

    def cpu(row, **ms):
        return {**row, "cpu_ms_per_request": ms}

    rows = [
        row("torchserve-rest", 16, 95.0, 200),  # the Python client's cell: wrk's wins where both ran
        cpu(row("torchserve-wrk", 16, 91.0, 200), frontend=1.0, workers=11.0, client=0.1),
        cpu(row("in-process", 16, 100.0, 150), process=10.0),
        row("flask", 16, 10.0, 1500),
        row("flask-seed", 16, 5.0, 3000),
        row("torchserve-wrk", 1, 20.0, 40.0),
        row("in-process", 1, 25.0, 30.0),
    ]
    verdicts = {(t["target"].split(",")[0], t["chars"]): (t["value"], t["pass"]) for t in ratios(rows)}
    assert verdicts == {
        ("TorchServe / in-process req/s", 667): (pytest.approx(0.91), True),
        ("TorchServe p50", 667): (pytest.approx(4 / 3), False),
        ("serving overhead", 667): (pytest.approx(2.0), False),  # 1 + 11 - 10 ms
        ("TorchServe / in-process req/s", 100): (None, None),  # no 100-character cells
        ("TorchServe p50", 100): (None, None),
        ("serving overhead", 100): (None, None),
        ("TorchServe / Flask (same precision", 667): (pytest.approx(9.1), False),  # not the seed's fp32/512 row
    }


def test_precision_rule_allows_only_drops_within_two_tenths_of_a_point():
    def acc(**values):
        return {name: {"accuracy": value, "reviews": 1000} for name, value in values.items()}

    results = {
        "fp32": acc(imdb=0.900, amazon=0.900),
        "bf16": acc(imdb=0.899, amazon=0.898),  # -0.1, -0.2 points
        "int8": acc(imdb=0.905, amazon=0.897),  # better on one set, -0.3 on the other
    }
    assert precision.eligible(results) == {"fp32": True, "bf16": True, "int8": False}

    def speed(variant, chars, batch, reviews_per_s):
        return {"variant": variant, "chars": chars, "batch": batch, "reviews_per_s": reviews_per_s}

    rows = [speed("fp32", 667, 8, 40.0), speed("bf16", 667, 8, 70.0), speed("int8", 667, 8, 90.0)]
    rows.append(speed("fp32", 100, 8, 500.0))  # the pick looks at the longest reviews' largest batch only
    accuracy = {"eligible": precision.eligible(results)}
    assert precision.pick(rows, accuracy) == "bf16"
    assert precision.pick(rows, None) is None


def test_server_pick_prefers_low_lone_latency_among_the_fastest():
    def variant(name, c16, c1_p50):
        return {"variant": name, "667_c16": {"req_per_s": c16}, "667_c1": {"p50_ms": c1_p50}}

    rows = [variant("slow", 50.0, 20.0), variant("delay20", 60.0, 45.0), variant("delay5", 59.0, 26.0)]
    assert sweep.pick(rows)["variant"] == "delay5"


def test_a_sampled_stack_is_charged_to_its_innermost_known_part():
    from benchmarks import stacks

    worker = "<module> (ts/model_service_worker.py:301);Service.predict (ts/service.py:135)"
    handler = f"{worker};BaseHandler.handle (ts/torch_handler/base_handler.py:458)"
    inference = f"{handler};SentimentHandler.inference (sentiment_handler.py:68)"
    core = f"{inference};predict_texts (review_sentiment/core/classifier.py:157)"
    raw = [
        f"{core};Module._call_impl (torch/nn/modules/module.py:1789);linear (torch/nn/functional.py:10) 30",
        f"{core};token_ids (review_sentiment/core/encoding.py:57);__call__ (transformers/tokenization_utils.py:9) 4",
        f"{core};encode (json/encoder.py:200) 1",  # stdlib leaf: the core frame above it decides
        f"{handler};SentimentHandler.postprocess (sentiment_handler.py:80);dumps (json/__init__.py:231) 2",
        f"{handler};add_metric (ts/metrics/metric_cache_abstract.py:50);info (logging/__init__.py:1) 3",
        f"{worker};retrieve_msg (ts/protocol/otf_message_handler.py:30) 5",
        "select (selectors.py:1) 7",
        "",
    ]
    samples = stacks.split(raw)
    assert samples == {
        stacks.MODEL: 30,
        "tokenization": 4,
        "core: validation, padding, softmax, results": 1,
        "handler: headers, JSON, metrics calls": 2,
        "TorchServe metrics (handler's and its own)": 3,
        "TorchServe worker protocol (socket, decode, encode, dispatch)": 5,
        stacks.OTHER: 7,
    }
    # 100 samples/s over 10 requests: the sampled parts in ms per request; the model gets the rest of
    # the worker's CPU (1.0 s here), which includes torch's intra-op threads that py-spy cannot see.
    parts = stacks.per_request_ms(samples, rate=100, worker_cpu_s=1.0, requests=10)
    assert parts["tokenization"] == pytest.approx(4.0) and parts[stacks.OTHER] == pytest.approx(7.0)
    assert parts[stacks.MODEL] == pytest.approx(100.0 - (4 + 1 + 2 + 3 + 5 + 7))


def test_the_wrk_script_sends_each_review_with_the_key_and_refuses_a_terminator():
    from benchmarks.wrk import lua_script
    from review_sentiment.client.load_driver import Target

    target = Target("rest", "http://127.0.0.1:1/predictions/sentiment", (("Authorization", "Bearer k3y"),))
    script = lua_script(target, ['Great "value", 100% {braces}', "Second review."])
    assert '["Authorization"] = [====[Bearer k3y]====]' in script
    assert '[====[Great "value", 100% {braces}]====]' in script and "[====[Second review.]====]" in script
    with pytest.raises(ValueError):
        lua_script(target, ["a review with ]====] inside"])


def test_flask_runs_at_the_served_precision_and_as_the_seed_ran_it():
    from benchmarks.matrix import flask_systems
    from review_sentiment.serve.model_config import model_config

    def variants(config):
        return [(s.name, s.precision, s.max_length, s.lengths) for s in flask_systems(config, "cpu")]

    config = model_config(handler={"cpu_precision": "bf16", "max_length": 256})
    assert variants(config) == [("flask", "bf16", 256, None), ("flask-seed", "fp32", None, (SEED_LENGTH,))]
    int8 = model_config(handler={"cpu_precision": "int8"})
    assert variants(int8) == [("flask-seed", "fp32", None, (SEED_LENGTH,))]  # a pipeline cannot run ONNX Runtime int8


def _run(mode: str, checkpoint, output, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "benchmarks.benchmark", mode, "--checkpoint", str(checkpoint)]
    command += ["--warmup", "0.5", "--duration", "2", "--output", str(output), *options]
    done = subprocess.run(command, cwd=paths.REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return done


@pytest.mark.serving
def test_overhead_run_splits_a_request_and_measures_the_stack_alone(tiny_checkpoint, tmp_path):
    _run("--overhead", tiny_checkpoint, tmp_path)
    report = json.loads((tmp_path / "overhead.json").read_text())
    for length, cell in report["split"]["served"].items():
        assert cell["plain"]["errors"] == 0 and cell["plain"]["req_per_s"] > 0, length
        # py-spy saw the worker: the protocol's own frames are in every profile.
        assert cell["samples"].get("TorchServe worker protocol (socket, decode, encode, dispatch)", 0) > 0, cell
    assert {(r["workers"], r["clients"]) for r in report["ceiling"]} == {(1, 16), (1, 64), (2, 16), (2, 64)}
    assert all(r["errors"] == 0 and r["cpu_ms_per_request"]["workers"] > 0 for r in report["ceiling"])
    text = (tmp_path / "overhead.md").read_text()
    assert "| Java frontend |" in text and "one Python worker (one core) can feed" in text


@pytest.mark.serving
def test_the_sweep_serves_each_variant_from_the_one_table(tiny_checkpoint, tmp_path):
    _run("--tune", tiny_checkpoint, tmp_path, "--variants", "2")
    report = json.loads((tmp_path / "tune.json").read_text())
    assert [r["variant"] for r in report["variants"]] == ["defaults", "JVM: serial GC"]
    cells = ("100_c1", "100_c16", "667_c1", "667_c16")
    assert all(r[cell]["errors"] == 0 and r[cell]["requests"] > 0 for r in report["variants"] for cell in cells)
    assert all(r["cold_start_s"] > 0 and r["memory"]["frontend_mib"] > 0 for r in report["variants"])
    # wrk's cells carry the server's CPU per request.
    assert report["client"] == "wrk" and report["variants"][0]["100_c16"]["cpu_ms_per_request"]["workers"] > 0
    assert report["recommended"] in {"defaults", "JVM: serial GC"}
    assert "| JVM: serial GC | 1 |" in (tmp_path / "tune.md").read_text()
    names = [v.name for v in sweep.variants()]
    assert len(names) == len(set(names)) and "batchSize 8, maxBatchDelay 5 ms" not in names  # the defaults' pair


def test_precision_speed_measures_every_precision_in_process_at_the_asked_threads(tiny_checkpoint):
    from review_sentiment.client.load_driver import Window
    from review_sentiment.serve.model_config import model_config

    cells = ((100, 1), (SEED_LENGTH, 4))
    figures = precision.measure_speed(tiny_checkpoint, model_config(), Window(0.0, 60.0, 8), cells=cells, threads=1)
    rows = {(r["variant"], r["chars"], r["batch"]): r for r in figures["rows"]}
    assert set(rows) == {(v, c, b) for v in precision.PRECISIONS for c, b in cells}
    assert all(r["reviews_per_s"] > 0 and r["load_s"] > 0 for r in rows.values())
    assert figures["threads"] == 1  # a worker's of the default layout on 2 cores, as the served precision runs
    text = precision.speed_markdown(figures)
    assert "| precision | 100 chars, batch 1 | 667 chars, batch 4 | load s |" in text and "threads: 1." in text
    assert "(1.00x)" in next(line for line in text.splitlines() if line.startswith("| fp32 |"))


def test_student_shapes_price_each_shape_against_the_served_one(tiny_checkpoint):
    """--shapes (issue #22 item 7): each shape's forward pass per cell, the first shape the
    reference of the ratios (figures, not compared to any target)."""
    from review_sentiment.client.load_driver import Window

    shapes = {"served": (2, 32, 64, None), "deeper": (8, 32, 64, None), "wider": (2, 128, 512, None)}
    figures = student_shapes.measure(
        tiny_checkpoint, Window(0.0, 0.2), shapes=shapes, cells=((100, 1), (SEED_LENGTH, 4)), teacher=False
    )
    rows = figures["shapes"]
    assert list(rows) == ["served", "deeper", "wider"] and figures["threads"] == 1
    assert set(rows["served"]["ms"]) == {"100x1", f"{SEED_LENGTH}x4"}
    assert rows["deeper"]["parameters_m"] > rows["served"]["parameters_m"]
    assert all(ms > 0 for row in rows.values() for ms in row["ms"].values())
    text = student_shapes.markdown(figures)
    assert "| served | " in text and "(1.0x)" in text and f"{SEED_LENGTH} chars, batch 4" in text
