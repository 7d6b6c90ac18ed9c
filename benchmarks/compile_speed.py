"""`--compile`: torch.compile (inductor, dynamic shapes) against eager fp32, in-process.

    python -m benchmarks.benchmark --compile      # writes results/benchmarks/compile_speed.*

The question of issue #14: does torch.compile make the served model faster at no accuracy cost?
fp32 is what `auto` serves on a CPU without native bf16. Measured where a server would use it:
at 1 thread (one worker of the default 2 workers x 1 thread) and at all cores (the in-process
ceiling), the cells of `--precision`; the compile a worker would pay at start; and agreement
with eager on the evaluation sets (same labels, largest probability difference).

Dynamic shapes, because a worker sees batch sizes 1..batchSize and lengths in steps of
pad_multiple: per-shape graphs would compile dozens of times. Two graphs cover them all
(batch 1 is specialised), so `compiled` warms both before the first measurement.
"""

from __future__ import annotations

import dataclasses
import gc
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from unittest import mock

from benchmarks import precision_speed
from benchmarks.results import save_report
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log

if TYPE_CHECKING:
    from training.api import LabelledSet

VARIANTS = ("fp32", "fp32-compiled")
THREADS = (1, 0)  # 1 first: its compile is the cold one, as a worker's first start; 0 = all cores
AGREEMENT_BATCH = 32
THREAD_TITLES = {"0": "All cores (the in-process ceiling)", "1": "1 torch thread (a worker's, default 2 workers x 1)"}


def compiled(classifier):
    """`classifier` with its model wrapped by torch.compile, both graphs compiled (batch 1 and
    batch > 1) so that no measured request pays for compilation."""
    import torch

    from review_sentiment.core.classifier import WARMUP_TEXTS

    classifier.model = torch.compile(classifier.model, dynamic=True)
    classifier.predict_texts(list(WARMUP_TEXTS[:1]))
    classifier.predict_texts(list(WARMUP_TEXTS))
    return classifier


def agreement(checkpoint: Path, config: dict, sets: Mapping[str, LabelledSet]) -> dict[str, dict]:
    """Per labelled set: eager and compiled accuracy, the share of equal labels and the largest
    |p(positive) difference|."""
    import numpy as np

    from review_sentiment.core.classifier import SentimentClassifier
    from review_sentiment.core.settings import InferenceSettings
    from training.api import model_probabilities, predicted_labels

    settings = dataclasses.replace(
        InferenceSettings.from_sources(config["handler"]), cpu_precision="fp32", explain=False, torch_threads=0
    )
    eager = SentimentClassifier.load(checkpoint, settings, "cpu")
    fast = compiled(SentimentClassifier.load(checkpoint, settings, "cpu"))
    out = {}
    for name, data in sets.items():
        p_eager = model_probabilities(eager, data.texts, AGREEMENT_BATCH)
        p_fast = model_probabilities(fast, data.texts, AGREEMENT_BATCH)
        labels, eager_labels, fast_labels = np.asarray(data.labels), predicted_labels(p_eager), predicted_labels(p_fast)
        out[name] = {
            "reviews": len(data.texts),
            "accuracy_eager": float((eager_labels == labels).mean()),
            "accuracy_compiled": float((fast_labels == labels).mean()),
            "same_label": float((eager_labels == fast_labels).mean()),
            "max_abs_diff": float(np.abs(p_eager - p_fast).max()),
        }
        log(f"  {name}: same label {out[name]['same_label']:.4f}, max |dp| {out[name]['max_abs_diff']:.2e}")
    return out


def _evaluation_sets(checkpoint: Path, limit: int) -> dict[str, LabelledSet]:
    from training.api import evaluation_sets  # the data readers: only when agreement is asked for

    return evaluation_sets(checkpoint, limit)


def measure(
    checkpoint: Path,
    config: dict,
    window: Window,
    cells=precision_speed.CELLS,
    limit: int = 1000,
    threads: tuple[int, ...] = THREADS,
) -> dict:
    """Speed per thread count, then agreement on `limit` reviews per evaluation set (0: none).
    Inductor's on-disk cache goes to a fresh folder, so the first compile is a cold one."""
    with (
        tempfile.TemporaryDirectory(prefix="sentiment-inductor-") as cache,
        mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": cache}),
    ):
        speed = {}
        for count in threads:
            log(f"threads {count or 'all cores'}")
            report = precision_speed.measure(checkpoint, config, window, VARIANTS, cells, False, count)
            speed[str(count)] = report["rows"]
            gc.collect()
        agree = agreement(checkpoint, config, _evaluation_sets(checkpoint, limit)) if limit else {}
    return {
        "checkpoint": report["checkpoint"],
        "window": dataclasses.asdict(window),
        "speed": speed,
        "agreement": agree,
    }


def markdown(report: dict, machine: str) -> str:
    window = report["window"]
    parts = [
        "# torch.compile against eager fp32 (in-process)\n\n"
        f"Measured on {machine}. Checkpoint `{report['checkpoint']}`, handler settings of "
        f"`config/model-config.yaml` at fp32; torch.compile(dynamic=True), inductor. Each cell "
        f"{window['warmup_s']} s warm-up + {window['duration_s']} s. Produced by "
        "`python -m benchmarks.benchmark --compile`.\n"
    ]
    for threads, rows in report["speed"].items():
        title = THREAD_TITLES.get(threads, f"{threads} torch threads")
        parts.append(f"## {title}\n\n{precision_speed.speed_table(rows)}\n")
    parts.append(
        "Reviews/s (× eager fp32 of the same cell). `load s`: SentimentClassifier.load with warm-up; "
        "for the compiled row also compiling both graphs (the first table's with an empty inductor "
        "cache, as a worker's first start; later ones reuse the process's caches).\n"
    )
    if report["agreement"]:
        table = markdown_table(
            ("set", "reviews", "accuracy eager", "accuracy compiled", "same label", "largest Δ p(positive), absolute"),
            (
                (
                    name,
                    str(a["reviews"]),
                    f"{100 * a['accuracy_eager']:.2f}",
                    f"{100 * a['accuracy_compiled']:.2f}",
                    f"{100 * a['same_label']:.2f} %",
                    f"{a['max_abs_diff']:.1e}",
                )
                for name, a in report["agreement"].items()
            ),
        )
        parts.append(f"## Agreement with eager (all cores, batches of {AGREEMENT_BATCH})\n\n{table}\n")
    return "\n".join(parts)


def write(report: dict, folder: Path, machine: str) -> str:
    text = markdown(report, machine)
    save_report(folder, "compile_speed", report, text)
    return text
