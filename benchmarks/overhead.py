"""`--overhead`: where a request's CPU goes in TorchServe, and what the serving stack costs alone.

1. The split, at 100 and 667 characters with 16 clients (wrk): CPU per request of the Java
   frontend, the Python worker and the client (from /proc), the worker's split into TorchServe's
   protocol, the handler, tokenization, the model and the core's own steps (py-spy, in a second,
   profiled window), beside the in-process core's CPU per review for the same load.
2. What cuts it: one setting changed at a time (JVM, netty threads, OpenMP waiting, batching,
   workers), each a fresh server: 1-client p50 and 16-client req/s and CPU per request at 100
   characters, 16-client req/s at 667.
3. The serving stack's ceiling: the same TorchServe set-up serving a tiny random model (2 layers,
   dim 32), so that nearly all that is left is overhead; requests/s and CPU per request with 1
   and 2 workers. 1000 / (a worker's CPU ms per request) is what one Python worker can feed a
   GPU; the estimate for 2,000 requests/s follows from it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import stacks, wrk
from benchmarks.inprocess import run_in_process
from benchmarks.results import fmt, save_report, serving_overhead_ms
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems import Running, torchserve
from review_sentiment.client.load_driver import Window
from review_sentiment.core.classifier import SentimentClassifier
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config
from training.api import make_tiny_checkpoint

LENGTHS = (100, SEED_LENGTH)
CLIENTS = 16
CEILING_CLIENTS = (16, 64)
CEILING_LAYOUTS = (1, 2)  # workers, one torch thread each
SPY_RATE = 200  # samples per second
GPU_TARGET_REQ_S = 2000


@dataclass(frozen=True)
class Variant:
    """One serving setting changed from the defaults (config/)."""

    name: str
    config: dict = field(default_factory=dict)  # model-config.yaml keys
    handler: dict = field(default_factory=dict)  # its handler: section
    properties: dict[str, str] = field(default_factory=dict)  # config.properties keys
    env: dict[str, str] = field(default_factory=dict)  # the frontend's and workers' environment


VARIANTS = (
    Variant("defaults"),
    Variant("JVM: serial GC", properties={"vmargs": "-XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError"}),
    Variant("netty: 1 thread each side", properties={"number_of_netty_threads": "1", "netty_client_threads": "1"}),
    Variant("OpenMP: idle threads sleep", env={"OMP_WAIT_POLICY": "PASSIVE"}),
    Variant("batchSize 16", config={"batchSize": 16}),
    Variant("maxBatchDelay 2 ms", config={"maxBatchDelay": 2}),
    Variant("1 worker x 2 threads", config={"minWorkers": 1, "maxWorkers": 1}),
    # Both cores for a lone request; under load 4 threads share 2 cores.
    Variant("2 workers x 2 threads", handler={"torch_threads": 2}),
    Variant(
        "2 workers x 2 threads, idle threads sleep", handler={"torch_threads": 2}, env={"OMP_WAIT_POLICY": "PASSIVE"}
    ),
    Variant("cpu_precision int8 (ONNX Runtime)", env={"SENTIMENT_CPU_PRECISION": "int8"}),
)


def measure_variants(checkpoint: Path, work: Path, window: Window, variants=VARIANTS, rounds: int = 1) -> list[dict]:
    """Each variant a fresh server; with `rounds` > 1 the whole list again, in the same order:
    on shared machines cells drift during a run, and the first of a list is not favoured twice."""
    rows = []
    short, long = reviews(100), reviews(SEED_LENGTH)
    for k, variant in enumerate(list(variants) * rounds):
        config = model_config(**variant.config, handler=variant.handler)
        with torchserve(checkpoint, config, work / f"variant-{k}", variant.properties, variant.env) as running:
            target = running.targets["rest"]
            cells = {
                "100_c1": wrk.run_wrk(target, short, 1, window, running.cpu_seconds),
                "100_c16": wrk.run_wrk(target, short, CLIENTS, window, running.cpu_seconds),
                "667_c16": wrk.run_wrk(target, long, CLIENTS, window, running.cpu_seconds),
            }
        rows.append(
            {"variant": variant.name, "round": k // len(variants) + 1, **{k2: r.to_dict() for k2, r in cells.items()}}
        )
        log(
            f"{variant.name}: 100 chars c1 p50 {cells['100_c1'].p50_ms:.1f} ms, "
            f"c16 {cells['100_c16'].req_per_s:.1f}/s; 667 chars c16 {cells['667_c16'].req_per_s:.1f}/s"
        )
    return rows


def _split_cell(running: Running, texts: list[str], window: Window, work: Path) -> dict:
    """One length: a plain wrk window (throughput, CPU per process), then a profiled one."""
    target = running.targets["rest"]
    plain = wrk.run_wrk(target, texts, CLIENTS, window, running.cpu_seconds)
    workers = running.worker_pids()
    profiles = [work / f"py-spy-{len(texts[0])}-{k}.txt" for k in range(len(workers))]
    spies = [stacks.record(pid, window.duration_s, p, SPY_RATE) for pid, p in zip(workers, profiles, strict=True)]
    profiled = wrk.run_wrk(target, texts, CLIENTS, dataclasses.replace(window, warmup_s=0), running.cpu_seconds)
    samples: Counter = Counter()  # every worker's: the CPU below is all workers' too
    for spy, profile in zip(spies, profiles, strict=True):
        _, errors = spy.communicate(timeout=120)
        if spy.returncode or not profile.exists():
            raise RuntimeError(f"py-spy failed ({spy.returncode}): {errors[-2000:]}")
        samples += stacks.split(profile.read_text().splitlines())
    cpu = profiled.cpu_ms_per_request or {}
    worker_cpu_s = cpu.get("workers", 0.0) * profiled.requests / 1000
    parts = stacks.per_request_ms(samples, SPY_RATE, worker_cpu_s, profiled.requests)
    return {"plain": plain.to_dict(), "profiled": profiled.to_dict(), "samples": dict(samples), "worker_parts": parts}


def measure_split(checkpoint: Path, work: Path, window: Window) -> dict:
    config = model_config()
    settings = InferenceSettings.from_sources(config["handler"])
    classifier = SentimentClassifier.load(checkpoint, settings, "cpu")  # all cores, as the matrix's ceiling
    core = {}
    for length in LENGTHS:
        result = run_in_process(classifier, reviews(length), CLIENTS, config["batchSize"], window)
        core[length] = result.to_dict()
        log(f"in-process {length} chars: {result.req_per_s:.1f} reviews/s, {result.cpu_ms_per_request}")
    del classifier
    cells = {}
    with torchserve(checkpoint, config, work / "split") as running:
        for length in LENGTHS:
            cells[length] = _split_cell(running, reviews(length), window, work)
            log(f"TorchServe {length} chars: {cells[length]['plain']['req_per_s']:.1f} req/s")
    return {"config": config, "in_process": core, "served": cells}


def measure_ceiling(work: Path, window: Window) -> list[dict]:
    """The tiny model behind the default TorchServe set-up, 100-character reviews."""
    checkpoint = make_tiny_checkpoint(work / "tiny-model")
    texts = reviews(100)
    rows = []
    for workers in CEILING_LAYOUTS:
        config = model_config(minWorkers=workers, maxWorkers=workers, handler={"torch_threads": 1, "explain": False})
        with torchserve(checkpoint, config, work / f"tiny-{workers}w") as running:
            for clients in CEILING_CLIENTS:
                result = wrk.run_wrk(running.targets["rest"], texts, clients, window, running.cpu_seconds)
                rows.append({"workers": workers, "clients": clients, **result.to_dict()})
                log(f"tiny model, {workers} worker(s), c{clients}: {result.req_per_s:.0f} req/s")
    return rows


def run(checkpoint: Path, work: Path, window: Window, variants: int | None = None, rounds: int = 1) -> dict:
    """All three parts; `variants`: how many of VARIANTS to try (the defaults first), `rounds` times."""
    if not wrk.available() or not stacks.available():
        raise SystemExit(
            "--overhead needs wrk (Debian package) and py-spy (requirements.txt): `make bench` installs both"
        )
    return {
        "split": measure_split(checkpoint, work, window),
        "variants": measure_variants(checkpoint, work, window, VARIANTS[:variants], rounds),
        "ceiling": measure_ceiling(work, window),
    }


def _per_request(cell: dict, name: str) -> float:
    return (cell["cpu_ms_per_request"] or {}).get(name, float("nan"))


def split_markdown(split: dict) -> str:
    served, core = split["served"], split["in_process"]
    lengths = list(served)  # ints as measured, strings when read back from overhead.json
    parts = sorted({p for cell in served.values() for p in cell["worker_parts"]}, key=lambda p: p != stacks.MODEL)
    header = ("CPU ms per request, 16 clients", *(f"{n} chars" for n in lengths))
    rows = [
        ("requests/s (wrk, no profiler)", *(fmt(served[n]["plain"]["req_per_s"]) for n in lengths)),
        ("Java frontend", *(fmt(_per_request(served[n]["plain"], "frontend"), 2) for n in lengths)),
        ("Python workers, all", *(fmt(_per_request(served[n]["plain"], "workers"), 2) for n in lengths)),
    ]
    rows += [(f"- {p}", *(fmt(served[n]["worker_parts"].get(p, 0.0), 2) for n in lengths)) for p in parts]
    rows += [
        ("client (wrk)", *(fmt(_per_request(served[n]["plain"], "client"), 2) for n in lengths)),
        ("in-process core, per review (same batches)", *(fmt(_per_request(core[n], "process"), 2) for n in lengths)),
        (
            "serving overhead: frontend + worker - in-process core",
            *(fmt(serving_overhead_ms(served[n]["plain"], core[n]), 2) for n in lengths),
        ),
    ]
    return markdown_table(header, rows)


def variants_markdown(rows: list[dict]) -> str:
    def cpu(cell: dict) -> str:
        return fmt(_per_request(cell, "frontend") + _per_request(cell, "workers"), 2)

    return markdown_table(
        (
            "setting (one change from the defaults)",
            "round",
            "100 chars, 1 client p50 ms",
            "100 chars, 16 clients req/s",
            "100 chars, 16 clients: frontend + worker CPU ms/req",
            "667 chars, 16 clients req/s",
            "errors",
        ),
        (
            (r["variant"], r.get("round", 1), fmt(r["100_c1"]["p50_ms"]), fmt(r["100_c16"]["req_per_s"]))
            + (cpu(r["100_c16"]),)
            + (fmt(r["667_c16"]["req_per_s"]), sum(r[k]["errors"] for k in ("100_c1", "100_c16", "667_c16")))
            for r in rows
        ),
    )


def ceiling_markdown(rows: list[dict]) -> str:
    table = markdown_table(
        ("workers", "clients", "req/s", "p50 ms", "frontend CPU ms/req", "worker CPU ms/req (all workers)"),
        (
            (r["workers"], r["clients"], fmt(r["req_per_s"], 0), fmt(r["p50_ms"], 1))
            + (fmt(_per_request(r, "frontend"), 2), fmt(_per_request(r, "workers"), 2))
            for r in rows
        ),
    )
    return f"{table}\n\n{gpu_estimate(rows)}"


def gpu_estimate(rows: list[dict]) -> str:
    """What the tiny-model figures say about feeding a GPU: each worker and the frontend are
    bound by their CPU per request (batching on a GPU shares the model call, not this)."""
    best = min(rows, key=lambda r: _per_request(r, "workers"))
    worker_ms, frontend_ms = _per_request(best, "workers"), _per_request(best, "frontend")
    per_worker, per_frontend = 1000 / worker_ms, 1000 / frontend_ms
    return (
        f"Per request, at best ({best['workers']} worker(s), {best['clients']} clients): a worker spends "
        f"{worker_ms:.2f} ms of CPU, so one Python worker (one core) can feed at most ~{per_worker:.0f} "
        f"requests/s; the frontend spends {frontend_ms:.2f} ms, ~{per_frontend:.0f} requests/s per core. "
        f"{GPU_TARGET_REQ_S:,} requests/s would need at least {GPU_TARGET_REQ_S / per_worker:.1f} worker cores "
        f"and {GPU_TARGET_REQ_S / per_frontend:.1f} frontend cores for the serving stack alone, before the "
        "model's own CPU work (tokenization) and the client's."
    )


def write(report: dict, folder: Path, machine: str) -> str:
    text = (
        f"Machine: {machine}.\n\n## Where a request's CPU goes (released model)\n\n"
        f"{split_markdown(report['split'])}\n\n"
        f"## What cuts it: one setting at a time (released model)\n\n{variants_markdown(report['variants'])}\n\n"
        f"## The serving stack alone (tiny model, 100 characters)\n\n{ceiling_markdown(report['ceiling'])}\n"
    )
    save_report(folder, "overhead", report, f"# Benchmark: overhead\n\n{text}")
    return text
