"""Speed of the sentiment service against the seed's design and against the raw model.

    python -m benchmarks.benchmark                 # `make bench`: the full matrix (~15 min on 2 cores)
    python -m benchmarks.benchmark --overhead      # where a request's CPU goes; the stack's own ceiling (~3 min)
    python -m benchmarks.benchmark --tune          # the serving-settings sweep that chose the defaults (~20 min)
    python -m benchmarks.benchmark --accuracy      # accuracy per CPU precision (~10 min, load-independent)
    python -m benchmarks.benchmark --precision     # in-process speed per CPU precision, 100/667 chars (~3 min)
    python -m benchmarks.benchmark --peers         # `make bench-peers`: TorchServe against its peers (~15 min)
    python -m benchmarks.benchmark --accurate      # sentiment-accurate beside the default model (~10 min)
    python -m benchmarks.benchmark --shapes        # what a wider or deeper student would cost, in-process (~3 min)
    python -m benchmarks.benchmark --smoke --output /tmp/smoke   # 16 requests a cell: does it work

The matrix measures, in one run, with the same checkpoint and the same reviews (reviews.py), the
systems of benchmarks/systems/: the seed's Flask design at the server's precision and max_length
and as the seed ran it; this project's TorchServe with config/model-config.yaml (REST through
wrk, with the CPU per request of every process; at --grpc-clients also REST through the Python
client, and gRPC); the inference core in this process with the server's settings on all cores,
batched like the server: the ceiling here. Every cell holds a fixed number of concurrent clients
for a fixed time and counts errors. Results go to results/benchmarks/ (report.py: Markdown and
JSON, plots for the matrix), stamped with machine, date and versions. Compare within one run:
absolute figures depend on the machine and on what else runs on it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# Client processes are spawned and import this module again (as __mp_main__): torch and
# transformers are imported only inside the functions that need them, so they start fast.
from benchmarks import accurate, matrix, overhead, peers, peers_report, precision, report, student_shapes, sweep
from benchmarks.reviews import LENGTHS, SEED_LENGTH
from review_sentiment import paths
from review_sentiment.client.load_driver import Window
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config

CONCURRENCY = (1, 4, 16, 64)
MATRIX_WINDOW = (2.0, 10.0)  # warm-up and measured seconds per cell
SHORT_WINDOW = (1.0, 6.0)  # the other modes': many cells
# The smoke run checks that everything works, not speed: each cell ends after 16 answers (at
# most 60 s), so a busy machine slows it down but cannot leave a cell empty.
SMOKE = {"lengths": (SEED_LENGTH,), "concurrency": (1, 4), "grpc_clients": 4, "window": Window(0.0, 60.0, 16)}


@dataclass(frozen=True)
class Mode:
    stem: str  # <stem>.json and <stem>.md
    title: str
    dated: bool  # into a <date>-<mode>/ folder of its own, else into results/benchmarks/ itself
    measure: Callable[[argparse.Namespace, Path], dict]  # (args, a scratch folder) -> figures
    markdown: Callable[[dict], str]
    plot: Callable[[dict, Path], list[str]] | None = None  # (figures, folder) -> the plots' names


def _config(args: argparse.Namespace) -> dict:
    return model_config(Path(args.model_config))


MODES = {
    "overhead": Mode(
        "overhead", "Benchmark: overhead", True,
        lambda a, work: overhead.measure(Path(a.checkpoint), work, a.window),
        overhead.markdown,
    ),
    "tune": Mode(
        "tune", "Benchmark: serving-settings sweep", True,
        lambda a, work: sweep.measure(
            Path(a.checkpoint), work, a.window, sweep.variants()[: a.variants], a.rounds or 1
        ),
        sweep.markdown,
    ),
    "accuracy": Mode(
        "precision_accuracy", "Accuracy per CPU precision", False,
        lambda a, _: precision.measure_accuracy(Path(a.checkpoint), _config(a)["handler"], a.accuracy_limit),
        precision.accuracy_markdown,
    ),
    "peers": Mode(
        "peers", "Benchmark: TorchServe against its peers", True,
        peers.measure,
        peers_report.markdown, peers_report.plot,
    ),
    "accurate": Mode(
        "accurate", "Benchmark: the accurate model beside the default", True,
        accurate.measure,
        accurate.markdown,
    ),
    "shapes": Mode(
        "student_shapes", "What a wider or deeper student costs (in-process)", True,
        lambda a, _: student_shapes.measure(Path(a.checkpoint), a.window, threads=a.threads or 1),
        student_shapes.markdown,
    ),
    "precision": Mode(
        "precision_speed", "Speed per CPU precision (in-process)", False,
        lambda a, _: precision.measure_speed(Path(a.checkpoint), _config(a), a.window, threads=a.threads),
        precision.speed_markdown,
    ),
}  # fmt: skip


def run(args: argparse.Namespace) -> Path:
    dated = args.mode in ("matrix", "smoke") or MODES[args.mode].dated
    default = report.RESULTS / f"{dt.date.today()}-{args.mode}" if dated else report.RESULTS
    folder = Path(args.output or (report.LOCAL / "bench-smoke" if args.mode == "smoke" else default))
    if args.mode in ("matrix", "smoke"):
        overrides = {} if args.workers is None else {"minWorkers": args.workers, "maxWorkers": args.workers}
        text = matrix.run(args, model_config(Path(args.model_config), **overrides), folder)
    else:
        mode, env = MODES[args.mode], report.environment()  # the machine as it was before measuring
        with tempfile.TemporaryDirectory(prefix=f"sentiment-{args.mode}-") as work:
            figures = {"mode": args.mode, **mode.measure(args, Path(work)), "environment": env}
        made = mode.plot(figures, folder) if mode.plot else []
        text = report.write(folder, mode.stem, mode.title, figures, mode.markdown(figures), made)
    print(text)
    log(f"written to {folder}")
    return folder


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(","))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = parser.add_mutually_exclusive_group()
    modes.add_argument("--smoke", action="store_true", help="one length, 1 and 4 clients, 16 requests a cell")
    modes.add_argument(
        "--overhead", action="store_true", help="CPU per request by process and part; tiny-model ceiling"
    )
    modes.add_argument("--tune", action="store_true", help="the serving-settings sweep (benchmarks/sweep.py)")
    modes.add_argument("--accuracy", action="store_true", help="accuracy per CPU precision on the evaluation sets")
    modes.add_argument("--precision", action="store_true", help="in-process speed per CPU precision (100/667 chars)")
    modes.add_argument("--peers", action="store_true", help="TorchServe against Triton, LitServe, BentoML, Ray Serve")
    modes.add_argument(
        "--accurate", action="store_true", help="sentiment-accurate beside the default (make archive-accurate first)"
    )
    modes.add_argument("--shapes", action="store_true", help="forward-pass cost of wider/deeper student shapes")
    parser.add_argument("--checkpoint", default=str(paths.RELEASED_MODEL))
    parser.add_argument("--model-config", default=str(paths.MODEL_CONFIG), help="TorchServe's model-config.yaml")
    parser.add_argument("--output", help="results folder (default results/benchmarks/[<date>-<mode>])")
    parser.add_argument("--systems", default=",".join(matrix.SYSTEMS), help=f"a subset of {matrix.SYSTEMS}")
    parser.add_argument("--lengths", type=_ints, default=LENGTHS, help="review lengths in characters")
    parser.add_argument("--concurrency", type=_ints, default=CONCURRENCY, help="concurrent clients per cell")
    parser.add_argument("--grpc-clients", type=int, default=16, help="clients for the gRPC cells (0: none)")
    parser.add_argument("--warmup", type=float, help="seconds per cell before measuring (matrix 2, others 1)")
    parser.add_argument("--duration", type=float, help="measured seconds per cell (matrix 10, others 6)")
    parser.add_argument("--flask-max-requests", type=int, default=300, help="request cap per Flask cell")
    parser.add_argument("--processes", type=int, default=1, help="client processes (GPU servers need several)")
    parser.add_argument("--workers", type=int, help="TorchServe workers, overriding the model config")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:0 for the in-process and Flask systems")
    parser.add_argument("--variants", type=int, help="--tune: how many settings to try (the defaults first; all)")
    parser.add_argument("--rounds", type=int, help="--tune: times to run the list of settings (1); --peers: rounds (2)")
    parser.add_argument("--peer-systems", default=",".join(peers.SYSTEMS), help=f"--peers: a subset of {peers.SYSTEMS}")
    parser.add_argument("--profile", action="store_true", help="--peers: py-spy where TorchServe is >10%% behind")
    parser.add_argument("--threads", type=int, help="torch threads: --precision all cores, --shapes 1 (a worker's)")
    parser.add_argument("--accuracy-limit", type=int, default=2000, help="reviews per evaluation set")
    args = parser.parse_args(argv)
    args.mode = next((m for m in ("smoke", *MODES) if getattr(args, m)), "matrix")
    args.systems = tuple(s for s in args.systems.split(",") if s)
    args.peer_systems = tuple(s for s in args.peer_systems.split(",") if s)
    if unknown := set(args.peer_systems) - set(peers.SYSTEMS):
        parser.error(f"unknown peer systems {sorted(unknown)}; choose from {peers.SYSTEMS}")
    if unknown := set(args.systems) - set(matrix.SYSTEMS):
        parser.error(f"unknown systems {sorted(unknown)}; choose from {matrix.SYSTEMS}")
    warmup, duration = MATRIX_WINDOW if args.mode in ("matrix", "smoke") else SHORT_WINDOW
    args.window = Window(args.warmup or warmup, args.duration or duration)
    if args.smoke:
        args.lengths, args.concurrency = SMOKE["lengths"], SMOKE["concurrency"]
        args.grpc_clients, args.window = SMOKE["grpc_clients"], SMOKE["window"]
        args.flask_max_requests = SMOKE["window"].max_requests
    return args


def main(argv: list[str] | None = None) -> None:
    run(parse_args(argv))


if __name__ == "__main__":
    main()
