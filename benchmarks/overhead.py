"""`--overhead`: where a request's CPU goes in TorchServe, and what the serving stack costs alone.

1. The split, at 100 and 667 characters with 16 clients (wrk): CPU per request of the Java
   frontend, the Python workers and the client (from /proc), the workers' split into
   TorchServe's protocol, the handler, tokenization, the model and the core's own steps (py-spy,
   in a second, profiled window), beside the in-process core's CPU per review for the same load.
2. The serving stack's ceiling: the same set-up serving a tiny random model (2 layers, dim 32),
   so that nearly all that is left is overhead, with 1 and 2 workers. 1000 / (a worker's CPU ms
   per request) is what one Python worker can feed a GPU; the estimate for 2,000 requests/s
   follows from it.
What one setting changed does to it is the sweep's job (`--tune`, benchmarks/sweep.py).
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from pathlib import Path

from benchmarks import stacks, wrk
from benchmarks.matrix import serving_overhead_ms
from benchmarks.report import fmt
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems import Running
from benchmarks.systems.in_process import InProcess
from benchmarks.systems.torchserve import TorchServe
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config

LENGTHS = (100, SEED_LENGTH)
CLIENTS = 16
CEILING_CLIENTS = (16, 64)
CEILING_WORKERS = (1, 2)  # one torch thread each
SPY_RATE = 200  # samples per second
GPU_TARGET_REQ_S = 2000


def _split_cell(running: Running, texts: list[str], window: Window, work: Path) -> dict:
    """One length: a plain wrk window (throughput, CPU per process), then a profiled one."""
    plain = running.load("wrk", texts, CLIENTS, window)
    workers = running.processes()["workers"]
    profiles = [work / f"py-spy-{len(texts[0])}-{k}.txt" for k in range(len(workers))]
    spies = [stacks.record(pid, window.duration_s, p, SPY_RATE) for pid, p in zip(workers, profiles, strict=True)]
    profiled = running.load("wrk", texts, CLIENTS, dataclasses.replace(window, warmup_s=0))
    samples: Counter = Counter()  # every worker's: the CPU below is all workers' too
    for spy, profile in zip(spies, profiles, strict=True):
        _, errors = spy.communicate(timeout=120)
        if spy.returncode or not profile.exists():
            raise RuntimeError(f"py-spy failed ({spy.returncode}): {errors[-2000:]}")
        samples += stacks.split(profile.read_text().splitlines())
    worker_cpu_s = (profiled.cpu_ms_per_request or {}).get("workers", 0.0) * profiled.requests / 1000
    parts = stacks.per_request_ms(samples, SPY_RATE, worker_cpu_s, profiled.requests)
    return {"plain": plain.to_dict(), "profiled": profiled.to_dict(), "samples": dict(samples), "worker_parts": parts}


def measure_split(checkpoint: Path, work: Path, window: Window) -> dict:
    config = model_config()
    with InProcess(config).start(checkpoint, work) as core:  # all cores, as the matrix's ceiling
        in_process = {length: core.load("core", reviews(length), CLIENTS, window).to_dict() for length in LENGTHS}
    cells = {}
    with TorchServe(config).start(checkpoint, work / "split") as running:
        for length in LENGTHS:
            cells[length] = _split_cell(running, reviews(length), window, work)
            log(f"TorchServe {length} chars: {cells[length]['plain']['req_per_s']:.1f} req/s")
    return {"config": config, "in_process": in_process, "served": cells}


def measure_ceiling(work: Path, window: Window) -> list[dict]:
    """The tiny model behind the default TorchServe set-up, 100-character reviews."""
    from training.api import make_tiny_checkpoint

    checkpoint = make_tiny_checkpoint(work / "tiny-model")
    rows = []
    for workers in CEILING_WORKERS:
        config = model_config(minWorkers=workers, maxWorkers=workers, handler={"torch_threads": 1, "explain": False})
        with TorchServe(config).start(checkpoint, work / f"tiny-{workers}w") as running:
            for clients in CEILING_CLIENTS:
                result = running.load("wrk", reviews(100), clients, window)
                rows.append({"workers": workers, "clients": clients, **result.to_dict()})
                log(f"tiny model, {workers} worker(s), c{clients}: {result.req_per_s:.0f} req/s")
    return rows


def measure(checkpoint: Path, work: Path, window: Window) -> dict:
    if not wrk.available() or not stacks.available():
        raise SystemExit(
            "--overhead needs wrk (Debian package) and py-spy (requirements.txt): `make bench` installs both"
        )
    return {"split": measure_split(checkpoint, work, window), "ceiling": measure_ceiling(work, window)}


def _per_request(cell: dict, name: str) -> float:
    return (cell["cpu_ms_per_request"] or {}).get(name, float("nan"))


def split_markdown(split: dict) -> str:
    served, core = split["served"], split["in_process"]
    lengths = list(served)  # ints as measured, strings when read back from overhead.json
    parts = sorted({p for cell in served.values() for p in cell["worker_parts"]}, key=lambda p: p != stacks.MODEL)

    def line(title: str, value) -> tuple:
        return (title, *(value(n) for n in lengths))

    rows = [
        line("requests/s (wrk, no profiler)", lambda n: fmt(served[n]["plain"]["req_per_s"])),
        line("Java frontend", lambda n: fmt(_per_request(served[n]["plain"], "frontend"), 2)),
        line("Python workers, all", lambda n: fmt(_per_request(served[n]["plain"], "workers"), 2)),
        *(line(f"- {p}", lambda n, p=p: fmt(served[n]["worker_parts"].get(p, 0.0), 2)) for p in parts),
        line("client (wrk)", lambda n: fmt(_per_request(served[n]["plain"], "client"), 2)),
        line("in-process core, per review (same batches)", lambda n: fmt(_per_request(core[n], "process"), 2)),
        line(
            "serving overhead: frontend + worker - in-process core",
            lambda n: fmt(serving_overhead_ms(served[n]["plain"], core[n]), 2),
        ),
    ]
    return markdown_table(("CPU ms per request, 16 clients", *(f"{n} chars" for n in lengths)), rows)


def ceiling_markdown(rows: list[dict]) -> str:
    table = markdown_table(
        ("workers", "clients", "req/s", "p50 ms", "frontend CPU ms/req", "worker CPU ms/req (all workers)"),
        (
            (r["workers"], r["clients"], fmt(r["req_per_s"], 0), fmt(r["p50_ms"], 1))
            + (fmt(_per_request(r, "frontend"), 2), fmt(_per_request(r, "workers"), 2))
            for r in rows
        ),
    )
    # Each worker and the frontend are bound by their CPU per request: a GPU's batching shares
    # the model call, not this.
    best = min(rows, key=lambda r: _per_request(r, "workers"))
    worker_ms, frontend_ms = _per_request(best, "workers"), _per_request(best, "frontend")
    per_worker, per_frontend = 1000 / worker_ms, 1000 / frontend_ms
    return (
        f"{table}\n\nPer request, at best ({best['workers']} worker(s), {best['clients']} clients): a worker spends "
        f"{worker_ms:.2f} ms of CPU, so one Python worker (one core) can feed at most ~{per_worker:.0f} "
        f"requests/s; the frontend spends {frontend_ms:.2f} ms, ~{per_frontend:.0f} requests/s per core. "
        f"{GPU_TARGET_REQ_S:,} requests/s would need at least {GPU_TARGET_REQ_S / per_worker:.1f} worker cores "
        f"and {GPU_TARGET_REQ_S / per_frontend:.1f} frontend cores for the serving stack alone, before the "
        "model's own CPU work (tokenization) and the client's."
    )


def markdown(figures: dict) -> str:
    return (
        f"## Where a request's CPU goes (released model)\n\n{split_markdown(figures['split'])}\n\n"
        f"## The serving stack alone (tiny model, 100 characters)\n\n{ceiling_markdown(figures['ceiling'])}\n"
    )
