"""Accuracy per CPU precision on the evaluation sets, for the rule that picks the default:
the fastest precision becomes the default only where its accuracy is at most 0.2 points
below fp32's on every set (issue #14: "faster at equal accuracy").

    python -m benchmarks.benchmark --accuracy          # writes results/benchmarks/precision_accuracy.*

The sets and their sampling are the evaluation's (training.api.evaluation_sets: the IMDB test
split no review of which was trained on, UCI Amazon and Yelp sentences), capped at `limit`
reviews each; every precision scores the same reviews with the server's handler settings.
Accuracy does not depend on machine load, so this part can run on a busy machine.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path

from benchmarks.results import save_report
from review_sentiment.markdown import markdown_table

PRECISIONS = ("fp32", "bf16", "int8")
SETS = ("imdb-test", "uci-amazon", "uci-yelp")
MAX_DROP_POINTS = 0.2


def measure(checkpoint: Path, handler_config: dict, limit: int, batch_size: int = 32) -> dict:
    from review_sentiment.core.classifier import SentimentClassifier
    from review_sentiment.core.settings import InferenceSettings
    from training.api import accuracy, evaluation_sets

    all_sets = evaluation_sets(checkpoint, limit)
    sets = {name: all_sets[name] for name in SETS}
    base = dataclasses.replace(InferenceSettings.from_sources(handler_config), warmup=False)
    results: dict[str, dict] = {}
    for precision in PRECISIONS:
        settings = dataclasses.replace(base, cpu_precision=precision)
        classifier = SentimentClassifier.load(checkpoint, settings, "cpu")
        results[precision] = {}
        for name, data in sets.items():
            start = time.perf_counter()
            right = accuracy(classifier, data.texts, data.labels, batch_size)
            results[precision][name] = {
                "reviews": len(data),
                "accuracy": right,
                "seconds": round(time.perf_counter() - start, 1),
            }
    return {
        "checkpoint": _shown(checkpoint),
        "limit_per_set": limit,
        "max_length": base.max_length,
        "head_fraction": base.head_fraction,
        "max_drop_points": MAX_DROP_POINTS,
        "results": results,
        "eligible": eligible(results),
    }


def _shown(path: Path) -> str:
    """The checkpoint as the report names it: relative to the repository when inside it."""
    from review_sentiment.paths import REPO

    path = path.resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


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


def markdown(report: dict, machine: str) -> str:
    results, lost = report["results"], drops(report["results"])
    names = list(results["fp32"])
    lines = [
        "# Accuracy per CPU precision",
        "",
        f"Measured on {machine}. Checkpoint `{report['checkpoint']}`, handler settings of `config/model-config.yaml` "
        f"(max_length {report['max_length']}, head_fraction {report['head_fraction']}); at most "
        f"{report['limit_per_set']} reviews per set, the same reviews for every precision (training.evaluate's sets "
        "and sampling). Produced by `python -m benchmarks.benchmark --accuracy`.",
        "",
        markdown_table(
            (
                "precision",
                *(f"{n} ({results['fp32'][n]['reviews']})" for n in names),
                "largest drop",
                f"default allowed (drop <= {report['max_drop_points']})",
            ),
            (
                (
                    precision,
                    *(f"{100 * row[n]['accuracy']:.2f}% ({0.0 - lost[precision][n]:+.2f})" for n in names),
                    f"{max(lost[precision].values()):.2f}",
                    "yes" if report["eligible"][precision] else "no",
                )
                for precision, row in results.items()
            ),
        ),
        "",
        "Accuracy in %, with the change against fp32 in points. The serving default is the fastest precision "
        "whose row says yes (speed: `--precision`, `--tune`).",
    ]
    return "\n".join(lines) + "\n"


def write(report: dict, folder: Path, machine: str) -> str:
    text = markdown(report, machine)
    save_report(folder, "precision_accuracy", report, text)
    return text


def load(folder: Path) -> dict | None:
    path = folder / "precision_accuracy.json"
    return json.loads(path.read_text()) if path.exists() else None
