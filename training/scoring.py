"""Scoring a checkpoint: probabilities through the serving core, accuracy per length bucket,
size and speed."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from training.labels import ID2LABEL, LABEL2ID
from training.metrics import predicted_labels

POSITIVE = ID2LABEL[LABEL2ID["positive"]]
SPEED_RUNS = {1: 20, 32: 5}  # batch size -> timed calls (the median is reported)
# Characters: a short product sentence, a paragraph, a long review.
LENGTH_BUCKETS = (("<=100", 0, 100), ("101-400", 101, 400), (">400", 401, None))


def load_classifier(model_dir: Path, max_length: int, threads: int = 0):
    """The serving core in fp32 (the precision the figures are reported at)."""
    # Imported here so that `--help` does not pay for importing torch and transformers.
    from review_sentiment.core.classifier import SentimentClassifier
    from review_sentiment.core.settings import InferenceSettings

    classifier = SentimentClassifier.load(
        model_dir, InferenceSettings(max_length=max_length, cpu_precision="fp32", torch_threads=threads), "cpu"
    )
    expected = [ID2LABEL[i] for i in sorted(ID2LABEL)]
    if classifier.labels != expected:
        raise ValueError(f"{model_dir}: config id2label gives {classifier.labels}, expected {expected}")
    return classifier


def model_probabilities(classifier, texts: Sequence[str], batch_size: int) -> np.ndarray:
    """p(positive) per text, in input order. Batches hold texts of similar length: less padding."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    probs = np.empty(len(texts))
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        predictions, _ = classifier.predict_texts([texts[i] for i in chunk])
        probs[chunk] = [p.probabilities[POSITIVE] for p in predictions]
    return probs


def bucket_of(text: str) -> str:
    n = len(text)
    return next(name for name, low, high in LENGTH_BUCKETS if n >= low and (high is None or n <= high))


def accuracy_by_length(texts: Sequence[str], labels: Sequence[int], probs: Sequence[float]) -> dict[str, dict]:
    """Per length bucket: reviews and accuracy (None where the bucket is empty)."""
    correct = predicted_labels(probs) == np.asarray(labels)
    out = {}
    for name, _, _ in LENGTH_BUCKETS:
        member = np.array([bucket_of(t) == name for t in texts], dtype=bool)
        n = int(member.sum())
        out[name] = {
            "n": n,
            "correct": int(correct[member].sum()),
            "accuracy": float(correct[member].mean()) if n else None,
        }
    return out


def pooled_by_length(per_set: Sequence[dict[str, dict]]) -> dict[str, dict]:
    """Per-bucket accuracy over several sets' reviews together."""
    out = {}
    for name, _, _ in LENGTH_BUCKETS:
        n = sum(s[name]["n"] for s in per_set)
        correct = sum(s[name]["correct"] for s in per_set)
        out[name] = {"n": n, "correct": correct, "accuracy": correct / n if n else None}
    return out


def ms_per_review(predict: Callable[[list[str]], object], texts: Sequence[str], batch_size: int, runs: int) -> float:
    """Median wall-clock ms per review over `runs` calls of `batch_size` reviews, after a warm-up call."""
    pick = lambda run: [texts[(run * batch_size + k) % len(texts)] for k in range(batch_size)]  # noqa: E731
    predict(pick(0))
    times = []
    for run in range(runs):
        batch = pick(run)
        start = time.perf_counter()
        predict(batch)
        times.append((time.perf_counter() - start) * 1000 / batch_size)
    return round(statistics.median(times), 3)


def speed(predict: Callable[[list[str]], object], texts: Sequence[str]) -> dict:
    return {
        f"batch_{size}_ms_per_review": ms_per_review(predict, texts, size, runs) for size, runs in SPEED_RUNS.items()
    }


def model_size(classifier, model_dir: Path) -> dict:
    weights = model_dir / "model.safetensors"
    config = json.loads((model_dir / "config.json").read_text())
    return {
        "parameters": int(sum(p.numel() for p in classifier.model.parameters())),
        "safetensors_mb": round(weights.stat().st_size / 1e6, 2) if weights.exists() else None,
        "stored_dtype": config.get("dtype") or config.get("torch_dtype"),
    }
