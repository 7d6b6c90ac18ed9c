"""`--tune`: the serving-settings sweep that chose the defaults. One table of variants, each a
change from config/ (model-config.yaml, its handler section, config.properties, the workers'
environment), each served by a fresh TorchServe and measured the same way: 1 and 16 clients at
100 and 667 characters (wrk where installed, with the CPU per request of each process), its
cold start (start command to first answer) and the resident memory of each process.

With `rounds` > 1 the whole list runs again in the same order: on shared machines cells drift
during a run, and the first of a list is not favoured twice. The recommendation: among the
variants within THROUGHPUT_TOLERANCE of the best 16-client requests/s at 667 characters, the
one with the lowest 1-client p50 there (batching that costs a lone client least).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks import wrk
from benchmarks.report import fmt, memory_text
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems.torchserve import TorchServe
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config

CELLS = ((100, 1), (100, 16), (SEED_LENGTH, 1), (SEED_LENGTH, 16))  # (characters, clients)
THROUGHPUT_TOLERANCE = 0.97


@dataclass(frozen=True)
class Variant:
    """Serving settings changed from the defaults (config/)."""

    name: str
    config: dict = field(default_factory=dict)  # model-config.yaml keys
    handler: dict = field(default_factory=dict)  # its handler: section
    properties: dict[str, str] = field(default_factory=dict)  # config.properties keys
    env: dict[str, str] = field(default_factory=dict)  # the frontend's and workers' environment


def _batching(sizes: tuple[int, ...] = (8, 16, 32), delays_ms: tuple[int, ...] = (0, 2, 5, 10, 20)) -> list[Variant]:
    """batchSize x maxBatchDelay, less the defaults' own pair."""
    base = model_config()
    pairs = [(b, d) for b in sizes for d in delays_ms if (b, d) != (base["batchSize"], base["maxBatchDelay"])]
    return [Variant(f"batchSize {b}, maxBatchDelay {d} ms", {"batchSize": b, "maxBatchDelay": d}) for b, d in pairs]


def variants() -> list[Variant]:
    """The one table, the defaults first (`--variants N` runs the first N); layouts are workers x
    torch threads each."""
    return [
        Variant("defaults"),
        Variant("JVM: serial GC", properties={"vmargs": "-XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError"}),
        Variant("netty: 1 thread each side", properties={"number_of_netty_threads": "1", "netty_client_threads": "1"}),
        Variant("OpenMP: idle threads sleep", env={"OMP_WAIT_POLICY": "PASSIVE"}),
        Variant("1 worker x 2 threads", {"minWorkers": 1, "maxWorkers": 1}),
        # A core left to Java and the clients.
        Variant("1 worker x 1 thread", {"minWorkers": 1, "maxWorkers": 1}, {"torch_threads": 1}),
        # Both cores for a lone request; under load 4 threads share 2 cores.
        Variant("2 workers x 2 threads", handler={"torch_threads": 2}),
        Variant(
            "2 workers x 2 threads, idle threads sleep",
            handler={"torch_threads": 2},
            env={"OMP_WAIT_POLICY": "PASSIVE"},
        ),
        # What a precision costs the server: start-up (int8 exports and quantizes), memory, speed.
        Variant("cpu_precision bf16", env={"SENTIMENT_CPU_PRECISION": "bf16"}),
        Variant("cpu_precision int8 (ONNX Runtime)", env={"SENTIMENT_CPU_PRECISION": "int8"}),
        *_batching(),
    ]


def _key(chars: int, clients: int) -> str:
    return f"{chars}_c{clients}"


def measure(checkpoint: Path, work: Path, window: Window, chosen: list[Variant], rounds: int = 1) -> dict:
    client = "wrk" if wrk.available() else "rest"
    rows = []
    for k, variant in enumerate(chosen * rounds):
        config = model_config(**variant.config, handler=variant.handler)
        system = TorchServe(config, variant.properties, variant.env)
        with system.start(checkpoint, work / f"variant-{k}") as running:
            cells = {_key(c, n): running.load(client, reviews(c), n, window).to_dict() for c, n in CELLS}
            row = {"variant": variant.name, "round": k // len(chosen) + 1, **cells}
            rows.append({**row, "cold_start_s": running.cold_start_s, "memory": running.memory()})
        log(f"{variant.name}: " + ", ".join(f"{key} {cell['req_per_s']:.1f}/s" for key, cell in cells.items()))
    return {
        "client": client,
        "window": dataclasses.asdict(window),
        "variants": rows,
        "recommended": pick(rows)["variant"],
    }


def pick(rows: list[dict]) -> dict:
    """Among rows within THROUGHPUT_TOLERANCE of the best 16-client req/s at the seed's length,
    the one with the lowest 1-client p50 there."""
    many, one = _key(SEED_LENGTH, 16), _key(SEED_LENGTH, 1)
    best = max(r[many]["req_per_s"] for r in rows)
    fast = [r for r in rows if r[many]["req_per_s"] >= THROUGHPUT_TOLERANCE * best]
    return min(fast, key=lambda r: r[one]["p50_ms"] or math.inf)  # None: no answer at all


def markdown(figures: dict) -> str:
    def cpu(cell: dict) -> str:
        spent = cell.get("cpu_ms_per_request") or {}
        return fmt(spent["frontend"] + spent["workers"], 2) if "workers" in spent else "-"

    window = figures["window"]
    keys = [_key(c, n) for c, n in CELLS]
    table = markdown_table(
        (
            "setting (changed from config/)",
            "round",
            *(f"{c} chars, {'1 client p50 ms' if n == 1 else f'{n} clients req/s'}" for c, n in CELLS),
            "100 chars, 16 clients: frontend + worker CPU ms/req",
            "errors",
            "cold start s",
            "memory RSS MiB",
        ),
        (
            (r["variant"], r["round"])
            + tuple(fmt(r[k]["p50_ms"] if k.endswith("_c1") else r[k]["req_per_s"]) for k in keys)
            + (cpu(r[_key(100, 16)]), sum(r[k]["errors"] for k in keys), fmt(r["cold_start_s"]), memory_text(r))
            for r in figures["variants"]
        ),
    )
    return (
        f"Each cell {window['warmup_s']} s warm-up + {window['duration_s']} s, load client {figures['client']}; "
        "each setting a fresh server.\n\n"
        f"{table}\n\nRecommended: **{figures['recommended']}** (the lowest 1-client p50 at {SEED_LENGTH} characters "
        f"among settings within {100 - 100 * THROUGHPUT_TOLERANCE:.0f}% of the best 16-client req/s there).\n"
    )
