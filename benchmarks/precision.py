"""Accuracy and speed per CPU precision (fp32, bf16, int8: the server's cpu_precision values),
for the rule that picks the default: the fastest precision whose accuracy is at most 0.2
points below fp32's on every set (issue #14: "faster at equal accuracy").

`--accuracy` scores the evaluation's sets (training.api.evaluation_sets: the IMDB test split no
review of which was trained on, UCI Amazon and Yelp), at most `limit` reviews each, the same
reviews for every precision, with the server's handler settings; it does not depend on machine
load. `--precision` classifies batches of one length, one batch after another, in this process
(batch 1 is plain latency), at all cores or a worker's threads; then, per precision, a
TorchServe with config/model-config.yaml: start command to first answer (int8's worker exports
and quantizes the model first) and the workers' memory. Speed depends on load: a quiet machine.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import tempfile
import time
from pathlib import Path

from benchmarks.report import RESULTS
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems.in_process import run_in_process
from benchmarks.systems.torchserve import TorchServe
from review_sentiment import paths
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config

PRECISIONS = ("fp32", "bf16", "int8")
SETS = ("imdb-test", "uci-amazon", "uci-yelp")
MAX_DROP_POINTS = 0.2
CELLS = ((100, 1), (100, 8), (100, 16), (SEED_LENGTH, 1), (SEED_LENGTH, 8), (SEED_LENGTH, 16))  # (chars, batch)
ACCURACY_FILE = RESULTS / "precision_accuracy.json"


def _settings(handler_config: dict, **changes):
    from review_sentiment.core.settings import InferenceSettings

    return dataclasses.replace(InferenceSettings.from_sources(handler_config), **changes)


def _shown(path: Path) -> str:
    """The checkpoint as the report names it: relative to the repository when inside it."""
    path = path.resolve()
    return str(path.relative_to(paths.REPO)) if path.is_relative_to(paths.REPO) else str(path)


def measure_accuracy(checkpoint: Path, handler_config: dict, limit: int, batch_size: int = 32) -> dict:
    from review_sentiment.core.classifier import SentimentClassifier
    from training.api import accuracy, evaluation_sets

    sets = evaluation_sets(checkpoint, limit)
    base = _settings(handler_config, warmup=False)
    results: dict[str, dict] = {}
    for precision in PRECISIONS:
        classifier = SentimentClassifier.load(checkpoint, dataclasses.replace(base, cpu_precision=precision), "cpu")
        results[precision] = {}
        for name in SETS:
            start = time.perf_counter()
            right = accuracy(classifier, sets[name].texts, sets[name].labels, batch_size)
            seconds = round(time.perf_counter() - start, 1)
            results[precision][name] = {"reviews": len(sets[name]), "accuracy": right, "seconds": seconds}
    return {
        "checkpoint": _shown(checkpoint),
        "limit_per_set": limit,
        "max_length": base.max_length,
        "head_fraction": base.head_fraction,
        "max_drop_points": MAX_DROP_POINTS,
        "results": results,
        "eligible": eligible(results),
    }


def drops(results: dict) -> dict[str, dict[str, float]]:
    """Accuracy points lost against fp32, per precision and set."""
    reference = results["fp32"]
    return {
        precision: {name: 100 * (reference[name]["accuracy"] - row[name]["accuracy"]) for name in reference}
        for precision, row in results.items()
    }


def eligible(results: dict) -> dict[str, bool]:
    """Precisions allowed as the default: at most MAX_DROP_POINTS below fp32 on every set."""
    return {p: max(d.values()) <= MAX_DROP_POINTS + 1e-9 for p, d in drops(results).items()}


def accuracy_markdown(figures: dict) -> str:
    results, lost = figures["results"], drops(figures["results"])
    names = list(results["fp32"])
    table = markdown_table(
        (
            "precision",
            *(f"{n} ({results['fp32'][n]['reviews']})" for n in names),
            "largest drop",
            f"default allowed (drop <= {figures['max_drop_points']})",
        ),
        (
            (
                precision,
                *(f"{100 * row[n]['accuracy']:.2f}% ({0.0 - lost[precision][n]:+.2f})" for n in names),
                f"{max(lost[precision].values()):.2f}",
                "yes" if figures["eligible"][precision] else "no",
            )
            for precision, row in results.items()
        ),
    )
    return (
        f"Checkpoint `{figures['checkpoint']}`, handler settings of `config/model-config.yaml` (max_length "
        f"{figures['max_length']}, head_fraction {figures['head_fraction']}); at most {figures['limit_per_set']} "
        "reviews per set, the same reviews for every precision (training.evaluate's sets and sampling). "
        f"Produced by `python -m benchmarks.benchmark --accuracy`.\n\n{table}\n\n"
        "Accuracy in %, with the change against fp32 in points. The serving default is the fastest precision "
        "whose row says yes (speed: `--precision`).\n"
    )


def measure_speed(
    checkpoint: Path, config: dict, window: Window, cells=CELLS, server: bool = True, threads: int | None = None
) -> dict:
    """`threads`: torch / ONNX Runtime threads (None: the handler config's torch_threads, whose
    0 means all cores here: one process, as the in-process ceiling)."""
    import torch

    from review_sentiment.core.classifier import SentimentClassifier

    changes = {"explain": False} if threads is None else {"explain": False, "torch_threads": threads}
    settings = _settings(config["handler"], **changes)
    rows = []
    for precision in PRECISIONS:
        start = time.perf_counter()
        classifier = SentimentClassifier.load(checkpoint, dataclasses.replace(settings, cpu_precision=precision), "cpu")
        load_s = round(time.perf_counter() - start, 1)
        for chars, batch in cells:
            result = run_in_process(classifier, reviews(chars), batch, batch, window)
            rows.append(
                {"variant": precision, "chars": chars, "batch": batch, "load_s": load_s}
                | {"reviews_per_s": round(result.req_per_s, 1), "p50_ms": round(result.p50_ms, 1)}
            )
            log(f"  {precision:5} {chars:4} chars  batch {batch:2}  {result.req_per_s:7.1f} reviews/s")
        del classifier
        gc.collect()
    served = {}
    for precision in PRECISIONS if server else ():
        system = TorchServe(model_config(config, handler={"cpu_precision": precision}))
        with (
            tempfile.TemporaryDirectory(prefix="sentiment-precision-") as work,
            system.start(checkpoint, Path(work)) as running,
        ):
            served[precision] = {"cold_start_s": round(running.cold_start_s, 1), "memory": running.memory()}
        log(f"  TorchServe {precision:5} first answer after {served[precision]['cold_start_s']} s")
    accuracy = json.loads(ACCURACY_FILE.read_text()) if ACCURACY_FILE.exists() else None
    return {
        "checkpoint": _shown(checkpoint),
        "window": dataclasses.asdict(window),
        "threads": torch.get_num_threads(),  # as the last load set them
        "rows": rows,
        "torchserve": served,
        "recommended": pick(rows, accuracy),
    }


def pick(rows: list[dict], accuracy: dict | None) -> str | None:
    """The fastest precision the accuracy rule allows, in the largest batch of the longest
    reviews measured; None until `--accuracy` has run."""
    if accuracy is None:
        return None
    chars, batch = max((r["chars"], r["batch"]) for r in rows)
    allowed = [r for r in rows if (r["chars"], r["batch"]) == (chars, batch) and accuracy["eligible"].get(r["variant"])]
    return max(allowed, key=lambda r: r["reviews_per_s"])["variant"] if allowed else None


def speed_table(rows: list[dict]) -> str:
    """Reviews/s per precision and cell, with the ratio to fp32's same cell, and load seconds."""
    cell = {(r["variant"], r["chars"], r["batch"]): r for r in rows}
    cells = list(dict.fromkeys((r["chars"], r["batch"]) for r in rows))

    def shown(precision: str, chars: int, batch: int) -> str:
        speed, fp32 = cell[(precision, chars, batch)]["reviews_per_s"], cell.get(("fp32", chars, batch))
        return f"{speed:.1f}" + (f" ({speed / fp32['reviews_per_s']:.2f}x)" if fp32 else "")

    precisions = list(dict.fromkeys(r["variant"] for r in rows))
    return markdown_table(
        ("precision", *(f"{c} chars, batch {b}" for c, b in cells), "load s"),
        ((p, *(shown(p, c, b) for c, b in cells), f"{cell[(p, *cells[0])]['load_s']:.1f}") for p in precisions),
    )


def speed_markdown(figures: dict) -> str:
    window, served = figures["window"], figures["torchserve"]
    text = (
        f"Checkpoint `{figures['checkpoint']}`, handler settings of `config/model-config.yaml`, torch / ONNX "
        f"Runtime threads: {figures['threads']}. Each cell {window['warmup_s']} s warm-up + {window['duration_s']} s. "
        f"Produced by `python -m benchmarks.benchmark --precision`.\n\n{speed_table(figures['rows'])}\n\n"
        "Reviews/s (× fp32 of the same cell). `load s`: SentimentClassifier.load with warm-up, the ONNX export "
        "and quantization included for int8. Recommended default (the fastest the accuracy rule allows, "
        f"`precision_accuracy.json`): **{figures['recommended'] or 'run --accuracy first'}**.\n"
    )
    if served:
        table = markdown_table(
            ("precision", "TorchServe start to first answer, s", "worker RSS after, MiB"),
            (
                (p, f"{r['cold_start_s']:.1f}", " / ".join(f"{m:.0f}" for m in r["memory"]["workers_mib"]))
                for p, r in served.items()
            ),
        )
        text += (
            f"\n{table}\n\nTorchServe with `config/model-config.yaml` at each precision (explanations on: bf16 "
            "and int8 workers also hold the fp32 torch weights).\n"
        )
    return text
