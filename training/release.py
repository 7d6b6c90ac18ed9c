"""Publish a trained checkpoint as the project's released model.

    python -m training.release runs/release/model        # -> models/review-sentiment/

Copies the checkpoint files, evaluates it (report/ beside it), and records in metrics.json a
summary and the regression check: accuracy on a fixed slice of the IMDB test split, which
`tests/test_released_model.py` recomputes on every test run.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np

from review_sentiment.paths import RELEASED_MODEL
from training import data as datasets
from training.evaluate import SPLIT_SEED, cap, evaluate, load_classifier, model_probabilities

RELEASE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training_info.json")
REGRESSION_SLICE = 400  # IMDB test reviews: enough for +-1 point to mean something, quick on CPU


def regression_check(model_dir: Path, max_length: int, n: int = REGRESSION_SLICE) -> dict:
    """Accuracy on the first `n` IMDB test reviews after evaluate's fixed shuffle."""
    test = datasets.split(datasets.deduplicate(datasets.load_imdb()), seed=SPLIT_SEED)["test"]
    part = cap(test, n)
    probs = model_probabilities(load_classifier(model_dir, max_length), part.texts, batch_size=32)
    accuracy = float(np.mean((probs > 0.5) == np.array(part.labels)))
    return {"set": "imdb-test", "n": len(part), "max_length": max_length, "accuracy": round(accuracy, 4)}


def summarize(result: dict) -> dict:
    keys = ("accuracy", "macro_f1", "roc_auc", "ece")
    return {
        name: {system: {k: s[system][k] for k in keys} for system in ("model", "baseline") if s.get(system)}
        for name, s in result["sets"].items()
    }


def release(source: Path, target: Path = RELEASED_MODEL, max_length: int = 256) -> dict:
    target.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    if (source.parent / "data_report.md").exists():  # written by training.train beside the model
        shutil.copy2(source.parent / "data_report.md", target / "data_report.md")
    result = evaluate(target, target / "report", max_length=max_length)
    metrics = {
        "max_length": max_length,
        "sets": summarize(result),
        "size": result["size"],
        "speed": result["speed"],
        "environment": result["environment"],
        "regression_check": regression_check(target, max_length),
    }
    (target / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return metrics


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a trained checkpoint folder (runs/<name>/model)")
    parser.add_argument("--target", type=Path, default=RELEASED_MODEL)
    parser.add_argument("--max-length", type=int, default=256)
    args = parser.parse_args(argv)
    print(json.dumps(release(args.source, args.target, args.max_length)["sets"], indent=2))


if __name__ == "__main__":
    main()
