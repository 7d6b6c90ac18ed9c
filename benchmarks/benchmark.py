"""Throughput and latency of the sentiment model, in-process and through TorchServe.

    python -m benchmarks.benchmark --checkpoint models/review-sentiment     # `make bench`

Everything is measured in one run on one machine, so compare ratios within a table rather
than across machines. Prints Markdown tables and writes the figures as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import torch
import transformers
import yaml

from review_sentiment import paths
from review_sentiment.client.grpc_client import GrpcClient
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.core.classifier import SentimentClassifier, cpu_precision
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.server import TorchServeProcess

MODEL_CONFIG = yaml.safe_load(paths.MODEL_CONFIG.read_text())

# 667 characters, the length the seed project benchmarked its Flask service with (1.69 req/s).
SEED_REVIEW = (
    "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads. I bought it "
    "because it states in the name that it clears pores. Not what I expected for this price. It is a "
    "nice texture though, and it smells lovely, so I kept using it for about three weeks hoping that "
    "the results would show up eventually. They did not. My pores look exactly the same as before and "
    "my skin feels a little tight after every use, which I never had with my old cleanser. The bottle "
    "is pretty and the pump works well, but for the money I would rather buy two bottles of the "
    "drugstore brand I used before. Would not repurchase, and I would not recommend it to my friends."
)[:667]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_core(checkpoint: Path, repeat: int) -> list[dict]:
    """The inference core alone: batch 1 latency and batch 16 throughput per CPU precision."""
    rows = []
    for precision in ("fp32", "bf16", "int8"):
        clf = SentimentClassifier.load(checkpoint, InferenceSettings(cpu_precision=precision), workers=1)
        one = timed(lambda clf=clf: clf.predict([SEED_REVIEW]), repeat)
        sixteen = timed(lambda clf=clf: clf.predict([SEED_REVIEW] * 16), max(3, repeat // 8))
        rows.append(
            {
                "precision": precision,
                "batch1_ms": statistics.median(one) * 1000,
                "batch16_reviews_per_s": 16 / statistics.median(sixteen),
            }
        )
    return rows


def load_test(send: Callable[[str], object], texts: list[str], concurrency: int) -> dict:
    latencies: list[float] = []

    def one(text: str) -> None:
        start = time.perf_counter()
        send(text)
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(one, texts))
    wall = time.perf_counter() - start
    return {
        "requests": len(texts),
        "concurrency": concurrency,
        "req_per_s": len(texts) / wall,
        "p50_ms": pct(latencies, 0.5) * 1000,
        "p95_ms": pct(latencies, 0.95) * 1000,
    }


def serve(mar_store: Path, work: Path, threads: int) -> tuple[TorchServeProcess, Endpoints]:
    os.environ["SENTIMENT_TORCH_THREADS"] = str(threads)  # inherited by the workers
    process = TorchServeProcess(run_dir=work / f"run-{threads}", model_store=mar_store)
    return process, process.start("sentiment=sentiment.mar", Endpoints.free(), timeout=300)


def bench_server(checkpoint: Path, requests_per_test: int, concurrency: int) -> list[dict]:
    """End to end through TorchServe: REST one client at a time, REST and gRPC with
    `concurrency` clients (so TorchServe batches), and workers x threads layouts."""
    rows = []
    texts = [SEED_REVIEW] * requests_per_test
    with tempfile.TemporaryDirectory(prefix="sentiment-bench-") as tmp:
        work = Path(tmp)
        build_archive(checkpoint, work / "store", "sentiment", paths.MODEL_CONFIG)
        for threads, workers_list in ((2, (1, 2)), (1, (2,))):
            process, _ = serve(work / "store", work, threads)
            try:
                rest = TorchServeClient.for_run_dir(process.run_dir)
                for workers in workers_list:
                    rest.scale(workers)
                    setup = f"{workers} worker(s) x {threads} thread(s)"
                    load_test(rest.predict, texts[:16], concurrency)  # warm up
                    if (workers, threads) == (1, 2):
                        sequential = load_test(rest.predict, texts[: requests_per_test // 2], 1)
                        rows.append({"setup": setup, "api": "REST", **sequential})
                        with GrpcClient.for_run_dir(process.run_dir) as grpc_client:
                            rows.append(
                                {"setup": setup, "api": "gRPC", **load_test(grpc_client.predict, texts, concurrency)}
                            )
                    rows.append({"setup": setup, "api": "REST", **load_test(rest.predict, texts, concurrency)})
            finally:
                process.stop()
    os.environ.pop("SENTIMENT_TORCH_THREADS", None)
    return rows


def environment() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())  # fmt: skip
    return {
        "date": date.today().isoformat(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "torchserve": "0.12.0",
        "batch_size": MODEL_CONFIG["batchSize"],
        "server_precision": cpu_precision(MODEL_CONFIG["handler"]["cpu_precision"]),
        "review_chars": len(SEED_REVIEW),
    }


def markdown(env: dict, core: list[dict], server: list[dict]) -> str:
    lines = [
        f"Machine: {env['cpu']}, {env['cores']} cores; {env['date']}; Python {env['python']}, torch {env['torch']}, "
        f"transformers {env['transformers']}, TorchServe {env['torchserve']}; review of {env['review_chars']} chars; "
        f"TorchServe batchSize {env['batch_size']}, CPU precision {env['server_precision']}.",
        "",
        "| core (no server), precision | batch 1 ms | batch 16 reviews/s |",
        "|---|---|---|",
    ]
    lines += [f"| {r['precision']} | {r['batch1_ms']:.1f} | {r['batch16_reviews_per_s']:.1f} |" for r in core]
    lines += ["", "| TorchServe setup | API | clients | req/s | p50 ms | p95 ms |", "|---|---|---|---|---|---|"]
    for r in server:
        lines.append(
            f"| {r['setup']} | {r['api']} | {r['concurrency']} | {r['req_per_s']:.1f} "
            f"| {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(paths.RELEASED_MODEL))
    parser.add_argument("--requests", type=int, default=160, help="requests per TorchServe measurement")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--repeat", type=int, default=30, help="runs per in-process measurement")
    parser.add_argument("--output", default="reports/local/benchmark.json")
    args = parser.parse_args(argv)
    checkpoint = Path(args.checkpoint)
    env = environment()
    core = bench_core(checkpoint, args.repeat)
    server = bench_server(checkpoint, args.requests, args.concurrency)
    print(markdown(env, core, server))
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps({"environment": env, "core": core, "torchserve": server}, indent=2))


if __name__ == "__main__":
    main()
