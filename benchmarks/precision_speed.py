"""In-process speed per CPU precision, at short and long reviews and a few batch sizes.

    python -m benchmarks.benchmark --precision     # writes results/benchmarks/precision_speed.*

Each cell classifies batches of `batch` reviews of one length, one batch after another, through
SentimentClassifier.classify with the server's handler settings and torch threads (as
benchmarks/inprocess.py; batch 1 is plain latency). Beside the precisions the server offers, one
reference row: `torch-int8`, torch's dynamic quantization of the Linear layers, the int8 the
server offered before ONNX Runtime's (review_sentiment/core/onnx_int8.py); `--compile` adds
`fp32-compiled` (benchmarks/compile_speed.py). Then, for each served
precision, a TorchServe with config/model-config.yaml at that precision: start command to first
answer (int8's worker exports and quantizes the model first) and the worker's resident memory.
Unlike accuracy, these figures depend on machine load: run it on a quiet machine.
"""

from __future__ import annotations

import dataclasses
import gc
import time
import warnings
from pathlib import Path

from benchmarks.accuracy import _shown
from benchmarks.inprocess import run_in_process
from benchmarks.results import save_report
from benchmarks.reviews import reviews
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log

SERVED = ("fp32", "bf16", "int8")  # the server's cpu_precision values; the rest are in-process references
VARIANTS = (*SERVED, "torch-int8")
CELLS = ((100, 1), (100, 8), (100, 16), (667, 1), (667, 8), (667, 16))  # (characters, batch)


def _classifier(checkpoint: Path, settings, variant: str):
    from review_sentiment.core.classifier import WARMUP_TEXTS, SentimentClassifier

    precision = variant if variant in SERVED else "fp32"  # the references start from fp32
    clf = SentimentClassifier.load(checkpoint, dataclasses.replace(settings, cpu_precision=precision), "cpu")
    if variant == "fp32-compiled":
        from benchmarks.compile_speed import compiled

        return compiled(clf)
    if variant != "torch-int8":
        return clf
    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization is deprecated: one more reason it left the server
        model = torch.ao.quantization.quantize_dynamic(clf.model, {torch.nn.Linear}, dtype=torch.qint8)
    int8 = SentimentClassifier(model, clf.tokenizer, clf.settings, clf.device)
    int8.predict_texts(list(WARMUP_TEXTS))
    return int8


def start_up(checkpoint: Path, config: dict, precisions) -> dict[str, dict]:
    """Per precision: TorchServe's start command to first answer, and its worker's RSS then."""
    from benchmarks.systems import torchserve
    from review_sentiment.serve.model_config import model_config

    out = {}
    for precision in precisions:
        with torchserve(checkpoint, model_config(config, handler={"cpu_precision": precision})) as running:
            out[precision] = {"cold_start_s": round(running.cold_start_s, 1), "memory": running.memory()}
        log(f"  TorchServe {precision:5} first answer after {out[precision]['cold_start_s']} s")
    return out


def measure(
    checkpoint: Path,
    config: dict,
    window: Window,
    variants=VARIANTS,
    cells=CELLS,
    server: bool = True,
    threads: int | None = None,
) -> dict:
    """`threads`: torch / ONNX Runtime threads (None: the handler config's torch_threads, whose
    0 means all cores here: one process, as the in-process ceiling)."""
    from review_sentiment.core.settings import InferenceSettings

    settings = dataclasses.replace(InferenceSettings.from_sources(config["handler"]), explain=False)
    if threads is not None:
        settings = dataclasses.replace(settings, torch_threads=threads)
    rows = []
    for variant in variants:
        start = time.perf_counter()
        clf = _classifier(checkpoint, settings, variant)
        load_s = time.perf_counter() - start
        for chars, batch in cells:
            result = run_in_process(clf, reviews(chars), batch, batch, window)
            rows.append(
                {
                    "variant": variant,
                    "chars": chars,
                    "batch": batch,
                    "reviews_per_s": round(result.req_per_s, 1),
                    "p50_ms": round(result.p50_ms, 1),
                    "load_s": round(load_s, 1),
                }
            )
            log(f"  {variant:10} {chars:4} chars  batch {batch:2}  {result.req_per_s:7.1f} reviews/s")
        del clf
        gc.collect()
    return {
        "checkpoint": _shown(checkpoint),
        "window": dataclasses.asdict(window),
        "threads": settings.torch_threads or "all cores",
        "rows": rows,
        "torchserve": start_up(checkpoint, config, [v for v in variants if v in SERVED]) if server else {},
    }


def speed_table(rows: list[dict]) -> str:
    """Reviews/s per variant and cell, with the ratio to fp32's same cell, and load seconds."""
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    cells = list(dict.fromkeys((r["chars"], r["batch"]) for r in rows))
    cell = {(r["variant"], r["chars"], r["batch"]): r for r in rows}
    base = {(c, b): cell[("fp32", c, b)]["reviews_per_s"] for c, b in cells if ("fp32", c, b) in cell}
    return markdown_table(
        ("precision", *(f"{c} chars, batch {b}" for c, b in cells), "load s"),
        (
            (
                variant,
                *(
                    f"{cell[(variant, c, b)]['reviews_per_s']:.1f}"
                    + (f" ({cell[(variant, c, b)]['reviews_per_s'] / base[(c, b)]:.2f}x)" if (c, b) in base else "")
                    for c, b in cells
                ),
                f"{cell[(variant, *cells[0])]['load_s']:.1f}",
            )
            for variant in variants
        ),
    )


def markdown(report: dict, machine: str) -> str:
    table = speed_table(report["rows"])
    window = report["window"]
    served = report["torchserve"]
    server_table = markdown_table(
        ("precision", "TorchServe start to first answer, s", "worker RSS after, MiB"),
        (
            (p, f"{r['cold_start_s']:.1f}", " / ".join(f"{m:.0f}" for m in r["memory"]["workers_mib"]))
            for p, r in served.items()
        ),
    )
    return (
        "# Speed per CPU precision (in-process)\n\n"
        f"Measured on {machine}. Checkpoint `{report['checkpoint']}`, handler settings of "
        f"`config/model-config.yaml`, torch / ONNX Runtime threads: {report['threads']}. Each cell "
        f"{window['warmup_s']} s warm-up + {window['duration_s']} s. Produced by "
        "`python -m benchmarks.benchmark --precision`.\n\n"
        f"{table}\n\n"
        "Reviews/s (× fp32 of the same cell). `load s`: SentimentClassifier.load with warm-up, the ONNX "
        "export and quantization included for int8. `torch-int8`: torch dynamic quantization, the int8 "
        "served before ONNX Runtime's, for reference.\n"
        + (
            f"\n{server_table}\n\nTorchServe with `config/model-config.yaml` at each precision (explanations "
            "on: bf16 and int8 workers also hold the fp32 torch weights).\n"
            if served
            else ""
        )
    )


def write(report: dict, folder: Path, machine: str) -> str:
    text = markdown(report, machine)
    save_report(folder, "precision_speed", report, text)
    return text
