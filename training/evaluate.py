"""Evaluate a fine-tuned checkpoint against a TF-IDF baseline (and optionally another
checkpoint) on the sets it never trained on.

    python -m training.evaluate --model runs/sentiment/model --report-dir runs/sentiment/report
    python -m training.evaluate --model models/review-sentiment --compare models/review-sentiment-v1 ...
    python -m training.evaluate --model /tmp/smoke/model --report-dir /tmp/eval --limit 200

The sets come from the data the model's training_info.json records (training.eval_sets):
each training source's own test split and the held-out UCI sentences. Scores come from the
serving core (training.scoring); the report (training.eval_report) has accuracy, F1, ROC-AUC,
ECE, accuracy per length bucket, size and speed, reliability diagrams and training curves.
Review texts are never printed or written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import time
from pathlib import Path

from review_sentiment.progress import log
from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.baseline import baseline_probabilities, baseline_size, fit_baseline
from training.eval_report import plot_curves, plot_reliability, to_markdown
from training.eval_sets import data_spec, description, held_out_sets, training_info
from training.labels import ID2LABEL
from training.metrics import classification_metrics
from training.scoring import (
    accuracy_by_length,
    load_classifier,
    model_probabilities,
    model_size,
    pooled_by_length,
    speed,
)


def environment() -> dict:
    import sklearn
    import torch
    import transformers

    from review_sentiment.core.machine import cpu_name

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit_learn": sklearn.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def training_summary(info: dict | None) -> dict | None:
    if info is None:
        return None
    keep = ("command", "train_size", "best_validation_accuracy", "seconds_this_run", "hardware", "temperature")
    summary = {k: info.get(k) for k in keep}
    summary["max_length"] = (info.get("args") or {}).get("max_length")
    return summary


def evaluate(
    model_dir: str | Path,
    report_dir: str | Path,
    max_length: int = 256,
    limit: int | None = None,
    batch_size: int = 32,
    baseline: bool = True,
    threads: int = 0,
    compare: str | Path | None = None,
    labels: tuple[str, str] = ("model", "compare"),
) -> dict:
    """Score the model (the `compare` checkpoint and the baseline too) on every set; write the
    report files; return metrics.json's content. `labels`: report names of the model and `compare`.

    `threads`: torch intra-op threads, 0 for one per core. On a machine busy with other work,
    fewer threads than cores avoids oversubscription, which slows batch-1 inference badly."""
    import torch

    # SentimentClassifier.load sets the thread count process-wide; callers (tests) keep theirs.
    threads_before = torch.get_num_threads()
    try:
        return _evaluate(
            Path(model_dir), Path(report_dir), max_length, limit, batch_size, baseline, threads, compare, labels
        )
    finally:
        torch.set_num_threads(threads_before)


def _evaluate(
    model_dir: Path,
    report_dir: Path,
    max_length: int,
    limit: int | None,
    batch_size: int,
    baseline: bool,
    threads: int,
    compare: str | Path | None,
    labels: tuple[str, str],
) -> dict:
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    info = training_info(model_dir)
    spec = data_spec(info)
    train, sets = held_out_sets(spec, limit)

    classifiers = {"model": load_classifier(model_dir, max_length, threads)}
    if compare is not None:
        classifiers["compare"] = load_classifier(Path(compare), max_length, threads)
    systems = {"model": labels[0]} | ({"compare": labels[1]} if compare is not None else {})
    pipeline, fit_seconds = None, None
    if baseline:
        start = time.perf_counter()
        pipeline = fit_baseline(train)
        fit_seconds = round(time.perf_counter() - start, 1)
        log(f"baseline fit on {len(train)} reviews in {fit_seconds} s")
        systems["baseline"] = "TF-IDF + LR"

    results = {}
    for name, data in sets.items():
        start = time.perf_counter()
        probs = {key: model_probabilities(clf, data.texts, batch_size) for key, clf in classifiers.items()}
        if pipeline is not None:
            probs["baseline"] = baseline_probabilities(pipeline, data.texts)
        log(f"{name}: {len(data)} reviews scored in {time.perf_counter() - start:.1f} s")
        results[name] = {
            "description": description(name),
            "size": len(data),
            "labels": {ID2LABEL[k]: data.labels.count(k) for k in sorted(ID2LABEL)},
            "load": data.report.to_dict(),
            **{key: classification_metrics(data.labels, p) for key, p in probs.items()},
            "by_length": {key: accuracy_by_length(data.texts, data.labels, p) for key, p in probs.items()},
        }
    pooled = {key: pooled_by_length([r["by_length"][key] for r in results.values()]) for key in systems}

    timing_texts = next(iter(sets.values())).texts
    load_average = round(os.getloadavg()[0], 2)
    speeds = {key: speed(clf.predict_texts, timing_texts) for key, clf in classifiers.items()}
    sizes = {"model": model_size(classifiers["model"], model_dir)}
    if compare is not None:
        sizes["compare"] = model_size(classifiers["compare"], Path(compare))
    if pipeline is not None:
        speeds["baseline"] = speed(lambda texts: baseline_probabilities(pipeline, texts), timing_texts)
        sizes["baseline"] = baseline_size(pipeline)

    curves = bool(info and info.get("log_history")) and plot_curves(info["log_history"], report_dir / "curves.png")
    plot_reliability(results, systems, report_dir / "reliability.png")

    result = {
        "model": os.path.relpath(model_dir),  # relative: reports get committed
        "compare": os.path.relpath(compare) if compare is not None else None,
        "systems": systems,
        "data_spec": spec,
        "max_length": max_length,
        "head_fraction": classifiers["model"].settings.head_fraction,
        "temperature": classifiers["model"].temperature,
        "precision": "fp32",
        "batch_size": batch_size,
        "limit": limit,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "run": {"seconds": round(time.time() - started, 1), "load_average_1m": load_average},
        "sets": results,
        "by_length": pooled,
        "baseline": {"description": BASELINE_DESCRIPTION, "train_size": len(train), "fit_seconds": fit_seconds}
        if pipeline is not None
        else None,
        "size": sizes,
        "speed": speeds,
        "training": training_summary(info),
        "curves": "curves.png" if curves else None,
        "reliability": "reliability.png",
    }
    (report_dir / "metrics.json").write_text(json.dumps(result, indent=2))
    (report_dir / "report.md").write_text(to_markdown(result))
    return result


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="checkpoint folder (e.g. runs/sentiment/model)")
    p.add_argument("--report-dir", required=True, help="where metrics.json, report.md and the plots go")
    p.add_argument("--max-length", type=int, default=256, help="tokens per review (head+tail truncation)")
    p.add_argument("--limit", type=int, help="at most N reviews per set, baseline training included (tests, CI)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    p.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF + logistic regression baseline")
    p.add_argument("--compare", help="a second checkpoint scored on the same sets (e.g. the released one)")
    p.add_argument("--labels", nargs=2, default=["model", "compare"], help="report names of --model and --compare")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.batch_size < 1 or args.threads < 0:
        p.error("--batch-size must be >= 1 and --threads >= 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = evaluate(
        args.model,
        args.report_dir,
        args.max_length,
        args.limit,
        args.batch_size,
        not args.no_baseline,
        args.threads,
        args.compare,
        tuple(args.labels),
    )
    for name, r in result["sets"].items():
        scores = ", ".join(f"{label} {r[key]['accuracy']:.3f}" for key, label in result["systems"].items())
        print(f"{name} (n={r['size']}): accuracy {scores}")
    print(f"report written to {Path(args.report_dir) / 'report.md'}")
    return result


if __name__ == "__main__":
    main()
