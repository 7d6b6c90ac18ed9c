"""Speed of the sentiment service against the seed's design and against the raw model.

    python -m benchmarks.benchmark                 # `make bench`: the full matrix (~15 min on 2 cores)
    python -m benchmarks.benchmark --tune          # the sweeps that choose the defaults (~15 min)
    python -m benchmarks.benchmark --accuracy      # accuracy per CPU precision (~10 min, load-independent)
    python -m benchmarks.benchmark --precision     # speed per CPU precision (100/667 chars), start-up (~5 min)
    python -m benchmarks.benchmark --compile       # torch.compile against eager fp32, agreement (~10 min)
    python -m benchmarks.benchmark --overhead      # where a request's CPU goes; the stack's own ceiling (~5 min)
    python -m benchmarks.benchmark --smoke --output /tmp/smoke   # 16 requests a cell: does it work

Measured in one run, with the same checkpoint and the same reviews (benchmarks/reviews.py):
  * flask:       the seed's design, benchmarks/flask_baseline.py (a pipeline, one request at a time),
                 at the server's precision and max_length, and at 667 characters as the seed ran it;
  * torchserve:  this project's TorchServe with config/model-config.yaml: REST through wrk (Debian's
                 native load client, with the CPU per request of every process), and at --grpc-clients
                 REST through the Python client and gRPC;
  * in-process:  review_sentiment.core in this process with the server's settings and all cores,
                 batched like the server (batch = clients, at most batchSize): the ceiling here.
Every cell holds a fixed number of concurrent clients for a fixed time and counts errors. Results go
to results/benchmarks/<date>-<mode>/ (Markdown, JSON, PNG), each stamped with machine, date and versions.
Compare within one run: absolute figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import os
import tempfile
import time
from pathlib import Path

# Client processes are spawned and import this module again (as __mp_main__): torch and
# transformers are imported only inside the functions that need them, so they start fast.
from benchmarks import accuracy, compile_speed, precision_speed, results, wrk  # noqa: E402
from benchmarks.reviews import LENGTHS, SEED_LENGTH, reviews  # noqa: E402
from benchmarks.systems import describe_config, flask_baseline, torchserve  # noqa: E402
from review_sentiment import paths  # noqa: E402
from review_sentiment.client.load_driver import Window, prime, run_load  # noqa: E402
from review_sentiment.progress import log  # noqa: E402
from review_sentiment.serve.model_config import model_config  # noqa: E402

RESULTS_DIR = paths.REPO / "results" / "benchmarks"
SYSTEMS = ("in-process", "flask", "torchserve")
CONCURRENCY = (1, 4, 16, 64)
MATRIX_WINDOW = (2.0, 10.0)  # warm-up and measured seconds per cell
TUNE_WINDOW = (1.0, 6.0)
# The smoke run checks that everything works, not speed: each cell ends after 16 answers (at
# most 60 s), so a busy machine slows it down but cannot leave a cell empty.
SMOKE = {"lengths": (SEED_LENGTH,), "concurrency": (1, 4), "grpc_clients": 4, "window": Window(0.0, 60.0, 16)}


def _row(system: str, chars: int, clients: int, result) -> dict:
    row = {"system": system, "chars": chars, "concurrency": clients, **result.to_dict()}
    log(
        f"  {system:16} {chars:5} chars  c{clients:<3} {row['req_per_s']:8.1f} req/s  p50 "
        f"{results.fmt(row['p50_ms'], 0):>6} ms  errors {row['errors']}"
    )
    return row


def _served_precision(config: dict, device: str) -> str:
    """The precision TorchServe serves in with `config` on `device` (fp32 / bf16 / fp16 / int8)."""
    import torch

    from review_sentiment.core.classifier import served_precision
    from review_sentiment.core.settings import InferenceSettings

    return served_precision(torch.device(device), InferenceSettings.from_sources(config["handler"]))


def flask_variants(config: dict, device: str) -> list[tuple[str, str, int | None]]:
    """(system, precision, max_length) of the Flask rows: the seed's design at the server's
    precision and max_length (what the ratio compares), and as the seed ran it (fp32, 512)."""
    precision = _served_precision(config, device)
    variants = [("flask-seed", "fp32", None)]
    if precision != "int8":  # a pipeline cannot run ONNX Runtime int8; then only the seed's row
        variants.insert(0, ("flask", precision, int(config["handler"]["max_length"])))
    return variants


def measure_matrix(args: argparse.Namespace, config: dict, work: Path) -> tuple[list[dict], dict]:
    """Every system x length x clients cell, one system at a time; plus each system's cold
    start and memory. REST goes through wrk where it is installed (the Python client only at
    --grpc-clients, beside gRPC, to show what a Python client costs)."""
    checkpoint = Path(args.checkpoint)
    texts = {length: reviews(length) for length in args.lengths}
    cells = [(length, clients) for length in args.lengths for clients in args.concurrency]
    rows: list[dict] = []
    systems: dict[str, dict] = {}
    if "in-process" in args.systems:
        from benchmarks.inprocess import run_in_process
        from review_sentiment.core.classifier import SentimentClassifier
        from review_sentiment.core.settings import InferenceSettings

        log("in-process core (the ceiling)")
        started = time.monotonic()
        settings = InferenceSettings.from_sources(config["handler"])
        # The model alone on the whole machine (all cores in one process), whatever the server's layout.
        classifier = SentimentClassifier.load(checkpoint, settings, args.device)
        systems["in-process"] = {"cold_start_s": time.monotonic() - started}
        for length, clients in cells:
            result = run_in_process(classifier, texts[length], clients, config["batchSize"], args.window)
            rows.append(_row("in-process", length, clients, result))
        del classifier
        gc.collect()
    if "flask" in args.systems:
        flask_window = dataclasses.replace(args.window, max_requests=args.flask_max_requests)
        for system, precision, max_length in flask_variants(config, args.device):
            log(f"Flask baseline (seed design, {precision}, max_length {max_length or 'of the model'})")
            # The seed's own settings only at the seed's length: that row is a reference, not a system.
            variant_cells = [c for c in cells if system == "flask" or c[0] == SEED_LENGTH]
            with flask_baseline(checkpoint, work / system, args.device, precision, max_length) as running:
                for length, clients in variant_cells:
                    result = run_load(running.targets["rest"], texts[length], clients, flask_window, args.processes)
                    rows.append(_row(system, length, clients, result))
                systems[system] = {"cold_start_s": running.cold_start_s, "memory": running.memory()}
    if "torchserve" in args.systems:
        log(f"TorchServe ({describe_config(config)})")
        native = wrk.available() and args.processes == 1
        if not native:
            log("  wrk not installed (Debian package wrk): REST through the Python client only")
        with torchserve(checkpoint, config, work / "torchserve") as running:
            if args.grpc_clients in args.concurrency:
                prime(running.targets["grpc"], texts[args.lengths[0]])
            for length, clients in cells:
                if native:
                    wrk_window = dataclasses.replace(args.window, duration_s=_wrk_seconds(args.window))
                    result = wrk.run_wrk(
                        running.targets["rest"], texts[length], clients, wrk_window, running.cpu_seconds
                    )
                    rows.append(_row("torchserve-wrk", length, clients, result))
                if not native or clients == args.grpc_clients:
                    result = run_load(running.targets["rest"], texts[length], clients, args.window, args.processes)
                    rows.append(_row("torchserve-rest", length, clients, result))
                if clients == args.grpc_clients:
                    result = run_load(running.targets["grpc"], texts[length], clients, args.window, args.processes)
                    rows.append(_row("torchserve-grpc", length, clients, result))
            systems["torchserve"] = {"cold_start_s": running.cold_start_s, "memory": running.memory()}
    return rows, systems


def _wrk_seconds(window) -> float:
    """wrk stops on time only: a smoke window (a request budget) gets 2 s."""
    return 2.0 if window.max_requests is not None else window.duration_s


def run_matrix(args: argparse.Namespace, mode: str) -> Path:
    overrides = {} if args.workers is None else {"minWorkers": args.workers, "maxWorkers": args.workers}
    config = model_config(Path(args.model_config), **overrides)
    env = results.environment(args.device)
    with tempfile.TemporaryDirectory(prefix="sentiment-bench-") as tmp:
        rows, systems = measure_matrix(args, config, Path(tmp))
    report = {
        "mode": mode,
        "environment": env,
        "checkpoint": str(args.checkpoint),
        "server_config": {"model_config": config, "summary": describe_config(config)},
        "window": dataclasses.asdict(args.window),
        "flask_max_requests": args.flask_max_requests,
        "load_average_at_end": round(os.getloadavg()[0], 2),
        "rows": rows,
        "systems": systems,
        "ratios": results.ratios(rows),
    }
    # Smoke runs check the harness: their figures stay out of the committed results.
    default = (
        paths.REPO / "results" / "local" / "bench-smoke" if args.smoke else RESULTS_DIR / f"{dt.date.today()}-{mode}"
    )
    folder = Path(args.output or default)
    print(results.write_matrix(report, folder))
    log(f"written to {folder}")
    return folder


def run_tune(args: argparse.Namespace) -> Path:
    from benchmarks import tune

    env = results.environment()
    with tempfile.TemporaryDirectory(prefix="sentiment-tune-") as tmp:
        report = tune.run(Path(args.checkpoint), Path(tmp), args.window, RESULTS_DIR)
    report["environment"] = env
    folder = Path(args.output or RESULTS_DIR / f"{dt.date.today()}-tune")
    print(tune.write(report, folder))
    log(f"written to {folder}")
    return folder


def run_overhead(args: argparse.Namespace) -> Path:
    from benchmarks import overhead

    env = results.environment()
    with tempfile.TemporaryDirectory(prefix="sentiment-overhead-") as tmp:
        report = overhead.run(Path(args.checkpoint), Path(tmp), args.window, args.variants, args.rounds)
    report["environment"] = env
    folder = Path(args.output or RESULTS_DIR / f"{dt.date.today()}-overhead")
    print(overhead.write(report, folder, results.machine_line(env)))
    log(f"written to {folder}")
    return folder


def _run_in_results(args: argparse.Namespace, mode, measure) -> Path:
    """A mode that writes into results/benchmarks/ (or --output): `measure(config)` with the model
    config, stamped with the environment as it was before measuring, written by `mode.write`."""
    env = results.environment()
    report = {**measure(model_config(Path(args.model_config))), "environment": env}
    folder = Path(args.output or RESULTS_DIR)
    print(mode.write(report, folder, results.machine_line(env)))
    return folder


def run_accuracy(args: argparse.Namespace) -> Path:
    checkpoint = Path(args.checkpoint)
    return _run_in_results(
        args, accuracy, lambda config: accuracy.measure(checkpoint, config["handler"], args.accuracy_limit)
    )


def run_precision(args: argparse.Namespace) -> Path:
    checkpoint = Path(args.checkpoint)
    return _run_in_results(
        args, precision_speed, lambda config: precision_speed.measure(checkpoint, config, args.window)
    )


def run_compile(args: argparse.Namespace) -> Path:
    checkpoint = Path(args.checkpoint)
    return _run_in_results(
        args,
        compile_speed,
        lambda config: compile_speed.measure(checkpoint, config, args.window, limit=args.accuracy_limit),
    )


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="one length, 1 and 4 clients, 16 requests a cell")
    mode.add_argument("--tune", action="store_true", help="precision, batching and worker sweeps (667 chars)")
    mode.add_argument("--accuracy", action="store_true", help="accuracy per CPU precision on the evaluation sets")
    mode.add_argument("--precision", action="store_true", help="in-process speed per CPU precision (100/667 chars)")
    mode.add_argument("--compile", action="store_true", help="torch.compile against eager fp32, in-process")
    mode.add_argument("--overhead", action="store_true", help="CPU per request by process and part; tiny-model ceiling")
    parser.add_argument("--checkpoint", default=str(paths.RELEASED_MODEL))
    parser.add_argument("--model-config", default=str(paths.MODEL_CONFIG), help="TorchServe's model-config.yaml")
    parser.add_argument("--output", help="results folder (default results/benchmarks/<date>-<mode>)")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated subset of {SYSTEMS}")
    parser.add_argument("--lengths", type=_ints, default=LENGTHS, help="review lengths in characters")
    parser.add_argument("--concurrency", type=_ints, default=CONCURRENCY, help="concurrent clients per cell")
    parser.add_argument("--grpc-clients", type=int, default=16, help="clients for the gRPC cells (0: none)")
    parser.add_argument("--warmup", type=float, help="seconds per cell before measuring (matrix 2, tune 1)")
    parser.add_argument("--duration", type=float, help="measured seconds per cell (matrix 10, tune 6)")
    parser.add_argument("--flask-max-requests", type=int, default=300, help="request cap per Flask cell")
    parser.add_argument("--processes", type=int, default=1, help="client processes (GPU servers need several)")
    parser.add_argument("--workers", type=int, help="TorchServe workers, overriding the model config")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:0 for the in-process and Flask systems")
    parser.add_argument("--variants", type=int, help="--overhead: how many settings to try (defaults first; all)")
    parser.add_argument("--rounds", type=int, default=1, help="--overhead: times to run the list of settings")
    parser.add_argument("--accuracy-limit", type=int, default=2000, help="reviews per evaluation set")
    args = parser.parse_args(argv)
    args.systems = tuple(s for s in args.systems.split(",") if s)
    unknown = set(args.systems) - set(SYSTEMS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; choose from {SYSTEMS}")
    default_warmup, default_duration = (
        TUNE_WINDOW if args.tune or args.overhead or args.precision or args.compile else MATRIX_WINDOW
    )
    args.window = Window(args.warmup or default_warmup, args.duration or default_duration)
    if args.smoke:
        args.lengths, args.concurrency = SMOKE["lengths"], SMOKE["concurrency"]
        args.grpc_clients, args.window = SMOKE["grpc_clients"], SMOKE["window"]
        args.flask_max_requests = SMOKE["window"].max_requests
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.accuracy:
        run_accuracy(args)
    elif args.precision:
        run_precision(args)
    elif args.compile:
        run_compile(args)
    elif args.overhead:
        run_overhead(args)
    elif args.tune:
        run_tune(args)
    else:
        run_matrix(args, "smoke" if args.smoke else "matrix")


if __name__ == "__main__":
    main()
