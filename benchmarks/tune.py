"""`--tune`: the sweeps that choose the serving defaults, all with 667-character reviews.

1. CPU precision (fp32, bf16, int8), in-process: batch-1 latency and batchSize throughput,
   beside the accuracy drop measured by `--accuracy` (the fastest precision whose drop is
   <= 0.2 points on every set may be the default).
2. maxBatchDelay x batchSize through TorchServe at 1 and 16 clients.
3. workers x torch threads per worker through TorchServe at 1 and 16 clients.
Each TorchServe variant is a fresh server from its own .mar, so each also gives a cold start
(start command to first answer) and the resident memory of the frontend and each worker.
"""

from __future__ import annotations

import dataclasses
import gc
import math
from pathlib import Path

import torch

from benchmarks import accuracy
from benchmarks.inprocess import run_in_process
from benchmarks.results import fmt, machine_line, memory_text, save_report
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems import torchserve
from review_sentiment.client.load_driver import Window, run_load
from review_sentiment.core.classifier import SentimentClassifier
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config

DELAYS_MS = (0, 5, 10, 20)
BATCH_SIZES = (8, 16, 32)
LAYOUTS = ((1, 2), (2, 1), (1, 1))  # workers x torch threads per worker; 1 x 1 leaves a core to Java and clients
CLIENTS = (1, 16)
# A variant whose 16-client throughput is within this share of the best counts as equally fast.
THROUGHPUT_TOLERANCE = 0.97


def sweep_precision(checkpoint: Path, base: dict, window: Window) -> list[dict]:
    """At one worker's torch threads of the configured layout (cores // maxWorkers unless set):
    the precision is chosen for the workers that will serve it. `--precision` measures all cores."""
    texts = reviews(SEED_LENGTH)
    batch_size = base["batchSize"]
    rows = []
    for precision in accuracy.PRECISIONS:
        settings = dataclasses.replace(InferenceSettings.from_sources(base["handler"]), cpu_precision=precision)
        classifier = SentimentClassifier.load(checkpoint, settings, "cpu", workers=base["maxWorkers"])
        one = run_in_process(classifier, texts, 1, batch_size, window)
        full = run_in_process(classifier, texts, batch_size, batch_size, window)
        rows.append(
            {
                "precision": precision,
                "threads": torch.get_num_threads(),
                "batch1_p50_ms": one.p50_ms,
                "batch_reviews_per_s": full.req_per_s,
            }
        )
        log(f"precision {precision}: batch 1 p50 {fmt(one.p50_ms)} ms, batch {batch_size} {full.req_per_s:.1f}/s")
        del classifier
        gc.collect()
    return rows


def serve_and_measure(checkpoint: Path, config: dict, work: Path, name: str, window: Window) -> dict:
    texts = reviews(SEED_LENGTH)
    with torchserve(checkpoint, config, work / name) as running:
        cells = {c: run_load(running.targets["rest"], texts, c, window).to_dict() for c in CLIENTS}
        row = {"cold_start_s": running.cold_start_s, "memory": running.memory(), "clients": cells}
    log(
        f"{name}: cold start {row['cold_start_s']:.1f} s, c1 p50 {fmt(cells[1]['p50_ms'])} ms, "
        f"c16 {cells[16]['req_per_s']:.1f}/s, errors {cells[1]['errors'] + cells[16]['errors']}"
    )
    return row


def sweep_batching(checkpoint: Path, base: dict, work: Path, window: Window) -> list[dict]:
    rows = []
    for batch_size in BATCH_SIZES:
        for delay in DELAYS_MS:
            config = model_config(base, batchSize=batch_size, maxBatchDelay=delay)
            row = serve_and_measure(checkpoint, config, work, f"b{batch_size}-d{delay}", window)
            rows.append({"batchSize": batch_size, "maxBatchDelay": delay, **row})
    return rows


def sweep_layouts(checkpoint: Path, base: dict, work: Path, window: Window) -> list[dict]:
    rows = []
    for workers, threads in LAYOUTS:
        config = model_config(base, minWorkers=workers, maxWorkers=workers, handler={"torch_threads": threads})
        row = serve_and_measure(checkpoint, config, work, f"w{workers}-t{threads}", window)
        rows.append({"workers": workers, "threads": threads, **row})
    return rows


def pick_server(rows: list[dict]) -> dict:
    """Among variants within THROUGHPUT_TOLERANCE of the best 16-client throughput, the one
    with the lowest 1-client p50: batching that costs a lone client least."""
    best = max(r["clients"][16]["req_per_s"] for r in rows)
    fast = [r for r in rows if r["clients"][16]["req_per_s"] >= THROUGHPUT_TOLERANCE * best]
    return min(fast, key=lambda r: r["clients"][1]["p50_ms"] or math.inf)  # None: no answer at all


def pick_precision(rows: list[dict], accuracy_report: dict | None) -> str | None:
    if accuracy_report is None:
        return None
    allowed = [r for r in rows if accuracy_report["eligible"].get(r["precision"])]
    return max(allowed, key=lambda r: r["batch_reviews_per_s"])["precision"] if allowed else None


def run(checkpoint: Path, work: Path, window: Window, accuracy_dir: Path) -> dict:
    base = model_config()
    accuracy_report = accuracy.load(accuracy_dir)
    precision = sweep_precision(checkpoint, base, window)
    layouts = sweep_layouts(checkpoint, base, work, window)
    batching = sweep_batching(checkpoint, base, work, window)
    best_batching, best_layout = pick_server(batching), pick_server(layouts)
    return {
        "mode": "tune",
        "window": dataclasses.asdict(window),
        "base_config": base,
        "precision": precision,
        "accuracy": accuracy_report,
        "layouts": layouts,
        "batching": batching,
        "recommended": {
            "cpu_precision": pick_precision(precision, accuracy_report),
            "batchSize": best_batching["batchSize"],
            "maxBatchDelay": best_batching["maxBatchDelay"],
            "workers": best_layout["workers"],
            "torch_threads": best_layout["threads"],
        },
    }


def markdown(report: dict) -> str:
    env, window = report["environment"], report["window"]
    acc = report["accuracy"]
    drops = accuracy.drops(acc["results"]) if acc else {}
    lines = [
        f"Machine: {machine_line(env)}. Load average at start: {env['load_average_at_start']}.",
        f"Reviews of {SEED_LENGTH} characters; each cell {window['warmup_s']} s warm-up + {window['duration_s']} s. "
        f"Everything not swept is `config/model-config.yaml`.",
        "",
    ]
    precision_rows = []
    for r in report["precision"]:
        drop = max(drops[r["precision"]].values()) if acc else None
        allowed = ("yes" if acc["eligible"][r["precision"]] else "no") if acc else "run --accuracy"
        precision_rows.append(
            (r["precision"], fmt(r["batch1_p50_ms"]), fmt(r["batch_reviews_per_s"]), fmt(drop, 2), allowed)
        )
    threads = "/".join(sorted({str(r["threads"]) for r in report["precision"] if "threads" in r}))
    headers = (
        f"CPU precision (in-process, {threads or 'worker'} torch threads: one worker's)",
        "batch 1 p50 ms",
        f"batch {report['base_config']['batchSize']} reviews/s",
        "largest accuracy drop, points",
        "default allowed",
    )
    lines.append(markdown_table(headers, precision_rows))
    lines += _server_table(report["batching"], ("batchSize", "maxBatchDelay"))
    lines += _server_table(report["layouts"], ("workers", "threads"))
    rec = report["recommended"]
    lines += [
        "",
        f"Recommended defaults: cpu_precision **{rec['cpu_precision'] or 'run --accuracy first'}** (fastest allowed), "
        f"batchSize **{rec['batchSize']}**, maxBatchDelay **{rec['maxBatchDelay']} ms** (the lowest 1-client p50 "
        f"among settings within {100 - 100 * THROUGHPUT_TOLERANCE:.0f}% of the best 16-client req/s), "
        f"workers x threads **{rec['workers']} x {rec['torch_threads']}**.",
    ]
    return "\n".join(lines) + "\n"


def _server_table(rows: list[dict], keys: tuple[str, str]) -> list[str]:
    headers = (
        *keys,
        "1 client p50 ms",
        "1 client req/s",
        "16 clients req/s",
        "16 clients p95 ms",
        "errors",
        "cold start s",
        "memory RSS MiB",
    )
    cells = []
    for r in rows:
        one, many = r["clients"][1], r["clients"][16]
        errors = one["errors"] + many["errors"]
        cells.append(
            (r[keys[0]], r[keys[1]], fmt(one["p50_ms"]), fmt(one["req_per_s"]), fmt(many["req_per_s"]))
            + (fmt(many["p95_ms"], 0), errors, fmt(r["cold_start_s"]), memory_text(r))
        )
    return ["", markdown_table(headers, cells)]


def write(report: dict, folder: Path) -> str:
    text = markdown(report)
    save_report(folder, "tune", report, f"# Benchmark: tuning sweep\n\n{text}")
    return text
