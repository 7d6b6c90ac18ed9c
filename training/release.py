"""Publish a trained checkpoint as the project's released model, if it is better.

    python -m training.release runs/sentiment/model        # -> models/review-sentiment/ if it wins

Scores the candidate and the released model on the candidate's held-out sets (training.evaluate
with --compare). It replaces the released model only when (the v3 rule, fixed before v3 was
trained) it beats it on the product sets by at least MIN_PRODUCT_GAIN on average, no set drops
by more than MAX_DROP, and IMDB stays at or above MIN_IMDB; otherwise the comparison is kept
beside the candidate and the released model stays. (v2 was released under the v2 rule: a mean
gain of 2 points on UCI Amazon, UCI Yelp and Fine Foods, IMDB >= 90.5%.) A release copies the
checkpoint files and the report, names the release v<N+1> in RELEASE (its version in TorchServe,
review_sentiment/serve/versions.py), and records in metrics.json a summary and the regression
check that `tests/test_released_model.py` recomputes on every test run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np

from review_sentiment.core.layout import notices
from review_sentiment.paths import RELEASED_MODEL
from review_sentiment.serve.versions import RELEASE_FILE
from training import data as datasets
from training.eval_sets import PRODUCT_SETS, cap, data_spec, held_out_sets, training_info
from training.evaluate import evaluate
from training.scoring import load_classifier, model_probabilities

RELEASE_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "training_info.json")
REGRESSION_SLICE = 400  # reviews per set: enough for +-1 point to mean something, quick on CPU
REGRESSION_SETS = ("imdb-test", "uci-amazon")  # a movie set and a product set
MIN_PRODUCT_GAIN = 0.015  # mean accuracy gain over PRODUCT_SETS
MAX_DROP = 0.01  # the most any evaluation set may lose
MIN_IMDB = 0.90


def next_release(target: Path) -> str:
    """The name the next release takes: v<N+1> after the released model's RELEASE (vN)."""
    current = (target / RELEASE_FILE).read_text().strip() if (target / RELEASE_FILE).is_file() else "v0"
    return f"v{int(current.lstrip('v')) + 1}"


def regression_check(model_dir: Path, max_length: int, n: int = REGRESSION_SLICE) -> dict:
    """Accuracy on the first `n` reviews (after the fixed shuffle) of each REGRESSION_SETS set,
    held out according to the model's own training data."""
    _, sets = held_out_sets(data_spec(training_info(model_dir)))
    classifier = load_classifier(model_dir, max_length)
    out = {}
    for name in REGRESSION_SETS:
        part: datasets.LabelledSet = cap(sets[name], n)
        probs = model_probabilities(classifier, part.texts, batch_size=32)
        accuracy = float(np.mean((probs > 0.5) == np.array(part.labels)))
        out[name] = {"n": len(part), "accuracy": round(accuracy, 4)}
    return {"max_length": max_length, "sets": out}


def copy_notices(source: Path, target: Path) -> None:
    """The released model carries its own licence notices: the previous release's go."""
    for old in notices(target):
        old.unlink()
    for notice in notices(source):
        shutil.copy2(notice, target / notice.name)


def summarize(result: dict) -> dict:
    keys = ("accuracy", "macro_f1", "roc_auc", "ece")
    return {
        name: {system: {k: s[system][k] for k in keys} for system in result["systems"] if s.get(system)}
        for name, s in result["sets"].items()
    }


def decide(result: dict) -> dict:
    """Whether the candidate ("model") beats the released one ("compare") by the rule above."""
    sets = result["sets"]
    changes = {name: s["model"]["accuracy"] - s["compare"]["accuracy"] for name, s in sets.items() if s.get("compare")}
    mean_gain = sum(changes[name] for name in PRODUCT_SETS) / len(PRODUCT_SETS)
    worst = min(changes, key=changes.get)
    imdb = sets["imdb-test"]["model"]["accuracy"]
    return {
        "product_gains": {name: round(changes[name], 4) for name in PRODUCT_SETS},
        "mean_product_gain": round(mean_gain, 4),
        "largest_drop": {"set": worst, "change": round(changes[worst], 4)},
        "imdb_accuracy": round(imdb, 4),
        "release": mean_gain >= MIN_PRODUCT_GAIN and changes[worst] >= -MAX_DROP and imdb >= MIN_IMDB,
        "rule": (
            f"mean gain on {', '.join(PRODUCT_SETS)} >= {MIN_PRODUCT_GAIN}, no set below -{MAX_DROP}, "
            f"imdb-test >= {MIN_IMDB}"
        ),
    }


def release(
    source: Path, target: Path = RELEASED_MODEL, max_length: int = 256, labels: tuple[str, str] = ("new", "released")
) -> dict:
    report = source.parent / "release-report"
    result = evaluate(source, report, max_length=max_length, compare=target, labels=labels)
    decision = decide(result)
    (report / "decision.json").write_text(json.dumps(decision, indent=2))
    if not decision["release"]:
        return {"decision": decision, "report": str(report)}
    version = next_release(target)  # read before the copy below replaces the released model
    for name in RELEASE_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, target / name)
    copy_notices(source, target)
    # The model's version in TorchServe (its archive's modelVersion, every answer's model_version).
    (target / RELEASE_FILE).write_text(version + "\n")
    if (source.parent / "data_report.md").exists():  # written by training.train beside the model
        shutil.copy2(source.parent / "data_report.md", target / "data_report.md")
    shutil.rmtree(target / "report", ignore_errors=True)
    shutil.copytree(report, target / "report")
    metrics = {
        "max_length": max_length,
        "sets": summarize(result),
        "by_length": result["by_length"],
        "systems": result["systems"],
        "decision": decision,
        "size": result["size"],
        "speed": result["speed"],
        "environment": result["environment"],
        "regression_check": regression_check(target, max_length),
    }
    (target / "metrics.json").write_text(json.dumps(metrics, indent=2))
    return {"decision": decision, "report": str(target / "report"), "version": version}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", type=Path, help="a trained checkpoint folder (runs/<name>/model)")
    parser.add_argument("--target", type=Path, default=RELEASED_MODEL, help="the released model it must beat")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--labels", nargs=2, default=["new", "released"], help="report names of source and target")
    args = parser.parse_args(argv)
    outcome = release(args.source, args.target, args.max_length, tuple(args.labels))
    print(json.dumps(outcome, indent=2))
    if not outcome["decision"]["release"]:
        print(f"not released: {outcome['decision']['rule']} not met; comparison in {outcome['report']}")
        sys.exit(1)


if __name__ == "__main__":
    main()
