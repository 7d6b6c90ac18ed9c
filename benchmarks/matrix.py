"""The matrix: every system x review length x concurrent clients, one system at a time, with
each system's cold start and memory, and the issue's target ratios, all from one run."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from pathlib import Path

from benchmarks import plots, report, wrk
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems import System
from benchmarks.systems.flask_baseline import FlaskBaseline
from benchmarks.systems.in_process import InProcess
from benchmarks.systems.torchserve import TorchServe, describe
from review_sentiment.client.load_driver import prime
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log

SYSTEMS = ("in-process", "flask", "torchserve")  # --systems; each name may stand for several variants
CLIENT_TITLES = {"wrk": "REST (wrk)", "rest": "REST (Python client)", "grpc": "gRPC"}
TARGET_CLIENTS = 16
SHORT_LENGTH = 100
REST_ROWS = ("torchserve-wrk", "torchserve-rest")  # TorchServe's REST rows, best first


def flask_systems(config: dict, device: str, max_requests: int | None = None) -> list[FlaskBaseline]:
    """The seed's design at the server's precision and max_length (what the ratio compares), and
    as the seed ran it (fp32, 512 tokens; a reference, at the seed's length only)."""
    import torch

    from review_sentiment.core.classifier import served_precision
    from review_sentiment.core.settings import InferenceSettings

    precision = served_precision(torch.device(device), InferenceSettings.from_sources(config["handler"]))
    seed = FlaskBaseline("flask-seed", "Flask + pipeline, as the seed ran it (fp32, 512 tokens)", device=device)
    seed.max_requests, seed.lengths = max_requests, (SEED_LENGTH,)
    if precision == "int8":  # a pipeline cannot run ONNX Runtime's int8: then only the seed's row
        return [seed]
    title = "Flask + pipeline (seed design, server's precision and max_length)"
    max_length = int(config["handler"]["max_length"])
    return [FlaskBaseline("flask", title, precision, max_length, device, max_requests), seed]


def systems(names: tuple[str, ...], config: dict, device: str, flask_max_requests: int) -> list[System]:
    chosen: list[System] = []
    if "in-process" in names:
        chosen.append(InProcess(config, device))
    if "flask" in names:
        chosen += flask_systems(config, device, flask_max_requests)
    if "torchserve" in names:
        chosen.append(TorchServe(config))
    return chosen


def _usable(client: str, processes: int) -> bool:
    return client != "wrk" or (wrk.available() and processes == 1)  # wrk is one process, and may be absent


def measure(args, config: dict, work: Path) -> tuple[list[dict], dict, dict[str, str]]:
    """Rows (one per system, client and cell), each system's cold start and memory, and the
    rows' titles. A system's preferred client runs every cell; its others run at
    --grpc-clients only (the Python client's REST beside gRPC shows what a Python client costs)."""
    texts = {length: reviews(length) for length in args.lengths}
    rows, started, titles = [], {}, {}
    for system in systems(args.systems, config, args.device, args.flask_max_requests):
        clients = [c for c in system.clients if _usable(c, args.processes)]
        log(system.title)
        lengths = [n for n in args.lengths if system.lengths is None or n in system.lengths]
        with system.start(Path(args.checkpoint), work / system.name) as running:
            if args.grpc_clients in args.concurrency:
                for client in clients[1:]:  # a protocol's first call pays for connecting and lazy set-up
                    prime(running.targets[client], texts[args.lengths[0]])
            for length in lengths:
                for count in args.concurrency:
                    for client in clients if count == args.grpc_clients else clients[:1]:
                        name, title = _row_name(system, client)
                        titles[name] = title
                        result = running.load(client, texts[length], count, args.window, args.processes)
                        rows.append(_row(name, length, count, result))
            memory = running.memory()
            started[system.name] = {"title": system.title, "cold_start_s": running.cold_start_s, "memory": memory}
    return rows, started, titles


def _row_name(system: System, client: str) -> tuple[str, str]:
    """A system with one load client is one row; TorchServe's are torchserve-wrk, -rest and -grpc."""
    if len(system.clients) == 1:
        return system.name, system.title
    return f"{system.name}-{client}", f"{system.title} {CLIENT_TITLES[client]}"


def _row(system: str, chars: int, clients: int, result) -> dict:
    row = {"system": system, "chars": chars, "concurrency": clients, **result.to_dict()}
    p50, errors = report.fmt(row["p50_ms"], 0), row["errors"]
    log(f"  {system:16} {chars:5} chars  c{clients:<3} {row['req_per_s']:8.1f} req/s  p50 {p50:>6} ms  errors {errors}")
    return row


def run(args, config: dict, folder: Path) -> str:
    env = report.environment(args.device)
    with tempfile.TemporaryDirectory(prefix="sentiment-bench-") as tmp:
        rows, started, titles = measure(args, config, Path(tmp))
    figures = {
        "mode": "smoke" if args.smoke else "matrix",
        "environment": env,
        "checkpoint": str(args.checkpoint),
        "server_config": {"model_config": config, "summary": describe(config)},
        "window": dataclasses.asdict(args.window),
        "flask_max_requests": args.flask_max_requests,
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "rows": rows,
        "systems": started,
        "titles": titles,
        "ratios": ratios(rows),
    }
    made = plots.matrix_plots(figures, folder)
    return report.write(folder, "results", f"Benchmark: {figures['mode']}", figures, markdown(figures), made)


def find(rows: list[dict], system: str, chars: int, clients: int) -> dict | None:
    return next((r for r in rows if (r["system"], r["chars"], r["concurrency"]) == (system, chars, clients)), None)


def rest_row(rows: list[dict], chars: int, clients: int) -> dict | None:
    """TorchServe's REST cell, measured with wrk where it ran, else with the Python client."""
    return next((r for system in REST_ROWS if (r := find(rows, system, chars, clients))), None)


def serving_overhead_ms(server: dict | None, ceiling: dict | None) -> float | None:
    """CPU per request that TorchServe spends beyond the in-process core's own CPU per review
    (frontend + workers - core), from a wrk cell and the in-process cell of the same load."""
    cpu, core = (server or {}).get("cpu_ms_per_request"), (ceiling or {}).get("cpu_ms_per_request")
    if not cpu or not core or "workers" not in cpu:
        return None
    return cpu["frontend"] + cpu["workers"] - core["process"]


def ratios(rows: list[dict], clients: int = TARGET_CLIENTS) -> list[dict]:
    """The targets, from one run: TorchServe (REST) against the in-process ceiling and the seed's
    design (at the server's precision and max_length) at `clients`, its lone-client p50 against
    batch-1 latency, and the CPU it spends per request beyond the model."""

    def ratio(a: dict | None, b: dict | None, key: str) -> float | None:
        return a[key] / b[key] if a and b and a[key] and b[key] else None  # None: a cell without answers

    checks = []
    for chars, floor in ((SEED_LENGTH, 0.9), (SHORT_LENGTH, 0.8)):
        ts, ts_one = rest_row(rows, chars, clients), rest_row(rows, chars, 1)
        ceiling, core_one = find(rows, "in-process", chars, clients), find(rows, "in-process", chars, 1)
        overhead = serving_overhead_ms(find(rows, "torchserve-wrk", chars, clients), ceiling)
        checks += [
            (f"TorchServe / in-process req/s, {clients} clients", chars, ratio(ts, ceiling, "req_per_s"), ">=", floor),
            ("TorchServe p50, 1 client / in-process batch-1 p50", chars, ratio(ts_one, core_one, "p50_ms"), "<=", 1.3),
            (f"serving overhead, CPU ms per request beyond the core, {clients} clients", chars, overhead, "<=", 1.5),
        ]
    flask = ratio(rest_row(rows, SEED_LENGTH, clients), find(rows, "flask", SEED_LENGTH, clients), "req_per_s")
    checks.append(
        (f"TorchServe / Flask (same precision, max_length) req/s, {clients} clients", SEED_LENGTH, flask, ">=", 10.0)
    )
    out = []
    for name, chars, value, op, target in checks:
        passed = None if value is None else (value >= target if op == ">=" else value <= target)
        out.append({"target": name, "chars": chars, "value": value, "rule": f"{op} {target}", "pass": passed})
    return out


def markdown(figures: dict) -> str:
    rows, titles, window, fmt = figures["rows"], figures["titles"], figures["window"], report.fmt
    cap = f" or {window['max_requests']} requests" if window.get("max_requests") else ""
    lines = [
        f"Server config: {figures['server_config']['summary']}. Each cell: {window['warmup_s']} s warm-up, then at "
        f"most {window['duration_s']} s measured{cap} (Flask at most {figures['flask_max_requests']} requests). "
        "Closed loop: each client sends its next review when the last is answered.",
        "",
        markdown_table(
            ("system", "review chars", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "requests"),
            (
                (titles[r["system"]], r["chars"], r["concurrency"], fmt(r["req_per_s"]))
                + (fmt(r["p50_ms"], 0), fmt(r["p95_ms"], 0), fmt(r["p99_ms"], 0), r["errors"], r["requests"])
                for r in rows
            ),
        ),
    ]
    verdicts = {None: "n/a", True: "PASS", False: "FAIL"}
    targets = [(t["target"], t["chars"], fmt(t["value"], 2), t["rule"], verdicts[t["pass"]]) for t in figures["ratios"]]
    lines += ["", markdown_table(("target", "review chars", "value", "rule", "result"), targets)]
    measured = [r for r in rows if r.get("cpu_ms_per_request")]
    if measured:
        names = ("process", "frontend", "workers", "client")
        cpu = markdown_table(
            ("system", "review chars", "clients", *(f"{n} CPU ms/request" for n in names)),
            (
                (
                    titles[r["system"]],
                    r["chars"],
                    r["concurrency"],
                    *(fmt(r["cpu_ms_per_request"].get(n), 2) for n in names),
                )
                for r in measured
            ),
        )
        lines += ["", "CPU per request (user + system, all threads; in-process: per review):", "", cpu]
    processes = [
        (info["title"], fmt(info["cold_start_s"]), report.memory_text(info)) for info in figures["systems"].values()
    ]
    lines += [
        "",
        markdown_table(("system", "cold start s (start command to first answer)", "memory RSS MiB"), processes),
    ]
    return "\n".join(lines) + "\n"
