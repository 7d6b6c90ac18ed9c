"""The accurate model beside the default, through TorchServe on this machine (issue #22 item 6):
archive size and build time, start-up to READY, resident memory, a lone client's latency on a
short (~60 characters) and a 667-character review, throughput at a few concurrencies, one
explanation. `make bench BENCH_ARGS=--accurate` (about 10 minutes on 2 busy cores).

Each model runs alone, one after the other, as it is archived for serving: the default from the
checkpoint with config/model-config.yaml (2 workers), `sentiment-accurate` from its built .mar
(`make archive-accurate`; its own model-config: 1 worker).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from benchmarks.report import fmt, shown
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.wrk import run_wrk
from review_sentiment import paths
from review_sentiment.client.load_driver import Target, Window
from review_sentiment.markdown import markdown_table as table
from review_sentiment.progress import log
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.processes import process_usage
from review_sentiment.serve.sandbox import sandbox
from review_sentiment.serve.versions import ArchiveInfo

SHORT = 60
LENGTHS = (SHORT, SEED_LENGTH)
CLIENTS = (1, 4, 16)


def accurate_mar() -> Path:
    mar = paths.model_store() / f"{paths.ACCURATE_MODEL_NAME}.mar"
    if not mar.is_file():
        raise SystemExit(f"no {mar}: build it first with `make archive-accurate`")
    return mar


def _serve(name: str, mar: Path, work: Path, window: Window) -> dict:
    """One model alone in a sandbox: start-up, memory, latency and throughput per cell."""
    load_at_start = os.getloadavg()[0]
    started = time.monotonic()
    with sandbox(mar, work / f"run-{name}", model_name=name, timeout=900) as server:
        ready_s = time.monotonic() - started
        client = server.new_client(model=name)
        first = time.monotonic()
        answer = client.predict(reviews(SHORT)[0])
        first_ms = (time.monotonic() - first) * 1000
        memory_ready = server.usage().memory()
        explain_start = time.monotonic()
        client.explain(reviews(SHORT)[1])
        explain_ms = (time.monotonic() - explain_start) * 1000
        target = Target(
            "rest", f"{server.endpoints.inference_url}/predictions/{name}", tuple(server.inference_headers().items())
        )

        def cpu() -> dict[str, float]:
            pids = {"frontend": [server.frontend_pid], "workers": server.worker_pids()}
            return {role: sum(process_usage(p).cpu_s for p in group) for role, group in pids.items()}

        cells = []
        for length in LENGTHS:
            for clients in CLIENTS:
                result = run_wrk(target, reviews(length), clients, window, cpu)
                cells.append({"length": length, "clients": clients, **result.to_dict()})
                log(f"{name} {length} chars c{clients}: {result.req_per_s:.2f} req/s, p50 {result.p50_ms:.0f} ms")
        memory_after = server.usage().memory()
    return {
        "model": name,
        "version": answer["model_version"],
        "load_average_at_start": round(load_at_start, 2),
        "ready_s": round(ready_s, 1),
        "first_answer_ms": round(first_ms, 1),
        "explain_short_ms": round(explain_ms, 1),
        "memory_ready": memory_ready,
        "memory_after_load": memory_after,
        "cells": cells,
    }


def measure(args, work: Path) -> dict:
    window = args.window
    started = time.monotonic()
    fast_mar = build_archive(Path(args.checkpoint), work / "store", paths.model_name(), Path(args.model_config))
    fast_build_s = time.monotonic() - started
    accurate = accurate_mar()
    models = []
    for name, mar, build_s in (
        (paths.model_name(), fast_mar, round(fast_build_s, 1)),
        (paths.ACCURATE_MODEL_NAME, accurate, None),
    ):
        info = ArchiveInfo.read(mar)
        figures = _serve(name, mar, work, window)
        models.append(
            {
                **figures,
                "archive_mb": round(mar.stat().st_size / 1e6, 1),
                "archive_build_s": build_s,
                "workers": info.workers[0],
                "batch_size": info.model_config.get("batchSize"),
                "source": shown(args.checkpoint) if mar == fast_mar else shown(mar),
            }
        )
    return {"window": {"warmup_s": window.warmup_s, "duration_s": window.duration_s}, "models": models}


def _mib(memory: dict) -> str:
    workers = memory.get("workers_mib") or []
    return f"frontend {fmt(memory.get('frontend_mib'), 0)}, workers " + ", ".join(fmt(w, 0) for w in workers)


def markdown(figures: dict) -> str:
    models = figures["models"]
    names = [m["model"] for m in models]
    rows = [
        ("version", *(m["version"] for m in models)),
        ("archive (MB)", *(fmt(m["archive_mb"]) for m in models)),
        ("archive build (s)", *(fmt(m["archive_build_s"]) if m["archive_build_s"] else "see notes" for m in models)),
        ("workers x batch size", *(f"{m['workers']} x {m['batch_size']}" for m in models)),
        ("start-up to READY (s)", *(fmt(m["ready_s"]) for m in models)),
        ("resident memory at READY (MiB)", *(_mib(m["memory_ready"]) for m in models)),
        ("resident memory after the load (MiB)", *(_mib(m["memory_after_load"]) for m in models)),
        ("one explanation, ~60 chars (ms)", *(fmt(m["explain_short_ms"], 0) for m in models)),
        ("load average at its start", *(fmt(m["load_average_at_start"], 2) for m in models)),
    ]
    cells = []
    for length in LENGTHS:
        for clients in CLIENTS:
            line = [f"{length} chars", str(clients)]
            for model in models:
                cell = next(c for c in model["cells"] if c["length"] == length and c["clients"] == clients)
                line += [fmt(cell["req_per_s"], 2), fmt(cell["p50_ms"], 0), fmt(cell["p95_ms"], 0)]
                line.append(str(cell["errors"]))
            cells.append(tuple(line))
    headers = ["review", "clients"]
    for name in names:
        headers += [f"{name} req/s", "p50 ms", "p95 ms", "errors"]
    window = figures["window"]
    return (
        table(["", *names], rows)
        + f"\n\nREST through wrk, {window['warmup_s']:g} s warm-up and {window['duration_s']:g} s measured per cell, "
        "each model alone on the machine:\n\n" + table(headers, cells) + "\n"
    )
