"""Accuracy and speed per CPU precision (the server's cpu_precision values), for the rule that
picks the default: the fastest precision whose accuracy is at most 0.2 points below fp32's on
every set (issue #14: "faster at equal accuracy").

`--accuracy` scores the evaluation's sets (training.api.evaluation_sets), at most `limit`
reviews each, the same reviews for every precision, with the server's handler settings: it
does not depend on machine load. `--precision` classifies batches of one length, one after
another, in this process (batch 1 is plain latency), at all cores or at a worker's threads.
What a precision costs TorchServe at start and in memory: `--tune`'s cpu_precision rows.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import time
from pathlib import Path

from benchmarks.report import RESULTS, shown
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems.in_process import run_in_process
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log

PRECISIONS = ("fp32", "bf16", "int8")
SETS = ("imdb-test", "uci-amazon", "uci-yelp")
MAX_DROP_POINTS = 0.2
CELLS = ((100, 1), (100, 8), (100, 16), (SEED_LENGTH, 1), (SEED_LENGTH, 8), (SEED_LENGTH, 16))  # (chars, batch)


def _classifiers(checkpoint: Path, handler_config: dict, **changes):
    """(precision, seconds to load, classifier) for each precision, one loaded at a time."""
    from review_sentiment.core.classifier import SentimentClassifier
    from review_sentiment.core.settings import InferenceSettings

    settings = dataclasses.replace(InferenceSettings.from_sources(handler_config), **changes)
    for precision in PRECISIONS:
        start = time.perf_counter()
        classifier = SentimentClassifier.load(checkpoint, dataclasses.replace(settings, cpu_precision=precision), "cpu")
        yield precision, round(time.perf_counter() - start, 1), classifier
        del classifier
        gc.collect()


def measure_accuracy(checkpoint: Path, handler_config: dict, limit: int, batch_size: int = 32) -> dict:
    from training.api import accuracy, evaluation_sets

    sets = evaluation_sets(checkpoint, limit)
    results: dict[str, dict] = {}
    for precision, _, classifier in _classifiers(checkpoint, handler_config, warmup=False):
        for name in SETS:
            start = time.perf_counter()
            right = accuracy(classifier, sets[name].texts, sets[name].labels, batch_size)
            seconds = round(time.perf_counter() - start, 1)
            results.setdefault(precision, {})[name] = {
                "reviews": len(sets[name]),
                "accuracy": right,
                "seconds": seconds,
            }
        settings = classifier.settings
    return {
        "checkpoint": shown(checkpoint),
        "limit_per_set": limit,
        "max_length": settings.max_length,
        "head_fraction": settings.head_fraction,
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
    allowed = f"default allowed (drop <= {figures['max_drop_points']})"
    header = ("precision", *(f"{n} ({results['fp32'][n]['reviews']})" for n in names), "largest drop", allowed)
    rows = (
        (p, *(f"{100 * row[n]['accuracy']:.2f}% ({-lost[p][n]:+.2f})" for n in names), f"{max(lost[p].values()):.2f}")
        + ("yes" if figures["eligible"][p] else "no",)
        for p, row in results.items()
    )
    return (
        f"Checkpoint `{figures['checkpoint']}`, handler settings of `config/model-config.yaml` (max_length "
        f"{figures['max_length']}, head_fraction {figures['head_fraction']}); at most {figures['limit_per_set']} "
        "reviews per set, the same for every precision (training.evaluate's sets and sampling).\n\n"
        f"{markdown_table(header, rows)}\n\n"
        "Accuracy in %, with the change against fp32 in points. The default is the fastest precision whose row "
        "says yes (speed: `--precision`).\n"
    )


def measure_speed(checkpoint: Path, config: dict, window: Window, cells=CELLS, threads: int | None = None) -> dict:
    """`threads`: torch / ONNX Runtime threads (None: the handler config's torch_threads, whose
    0 means all cores here: one process, as the in-process ceiling)."""
    import torch

    changes = {"explain": False} | ({} if threads is None else {"torch_threads": threads})
    rows = []
    for precision, load_s, classifier in _classifiers(checkpoint, config["handler"], **changes):
        for chars, batch in cells:
            result = run_in_process(classifier, reviews(chars), batch, batch, window)
            speed = {"reviews_per_s": round(result.req_per_s, 1), "p50_ms": round(result.p50_ms, 1)}
            rows.append({"variant": precision, "chars": chars, "batch": batch, "load_s": load_s, **speed})
            log(f"  {precision:5} {chars:4} chars  batch {batch:2}  {result.req_per_s:7.1f} reviews/s")
    accuracy = RESULTS / "precision_accuracy.json"
    return {
        "checkpoint": shown(checkpoint),
        "window": dataclasses.asdict(window),
        "threads": torch.get_num_threads(),  # as the loads set them
        "rows": rows,
        "recommended": pick(rows, json.loads(accuracy.read_text()) if accuracy.exists() else None),
    }


def pick(rows: list[dict], accuracy: dict | None) -> str | None:
    """The fastest precision the accuracy rule allows, in the largest batch of the longest
    reviews measured; None until `--accuracy` has run."""
    if accuracy is None:
        return None
    largest = max((r["chars"], r["batch"]) for r in rows)
    allowed = [r for r in rows if (r["chars"], r["batch"]) == largest and accuracy["eligible"].get(r["variant"])]
    return max(allowed, key=lambda r: r["reviews_per_s"])["variant"] if allowed else None


def speed_markdown(figures: dict) -> str:
    rows, window = figures["rows"], figures["window"]
    cell = {(r["variant"], r["chars"], r["batch"]): r for r in rows}
    cells = list(dict.fromkeys((r["chars"], r["batch"]) for r in rows))

    def speed(precision: str, chars: int, batch: int) -> str:
        value, fp32 = cell[(precision, chars, batch)]["reviews_per_s"], cell.get(("fp32", chars, batch))
        return f"{value:.1f}" + (f" ({value / fp32['reviews_per_s']:.2f}x)" if fp32 else "")

    table = markdown_table(
        ("precision", *(f"{c} chars, batch {b}" for c, b in cells), "load s"),
        ((p, *(speed(p, *c) for c in cells), f"{cell[(p, *cells[0])]['load_s']:.1f}") for p in PRECISIONS),
    )
    return (
        f"Checkpoint `{figures['checkpoint']}`, handler settings of `config/model-config.yaml`, torch / ONNX "
        f"Runtime threads: {figures['threads']}. Each cell {window['warmup_s']} s warm-up + {window['duration_s']} s."
        f"\n\n{table}\n\nReviews/s (× fp32 of the same cell). `load s`: SentimentClassifier.load with warm-up, the "
        "ONNX export and quantization included for int8. The default the accuracy rule allows "
        f"(`precision_accuracy.json`): **{figures['recommended'] or 'run --accuracy first'}**.\n"
    )
