"""Evaluate a fine-tuned checkpoint against a TF-IDF baseline, in and out of domain.

    python -m training.evaluate --model runs/release/model --report-dir reports/release
    python -m training.evaluate --model /tmp/smoke/model --report-dir /tmp/eval --limit 200

Sets: the IMDB test split (the same deduplication and split(seed=42) as training.train, so
no review seen in training), UCI Amazon and Yelp sentences, and Amazon Fine Foods scored as
"great (5 stars) vs the rest", which is narrower than sentiment and is reported apart.

Writes metrics.json (everything), report.md (tables), reliability.png (calibration per set)
and curves.png (training loss and validation accuracy, from the model's training_info.json).
Review texts are never printed or written.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from training import data as datasets
from training.baseline import DESCRIPTION as BASELINE_DESCRIPTION
from training.baseline import baseline_probabilities, baseline_size, fit_baseline
from training.labels import ID2LABEL, LABEL2ID
from training.metrics import classification_metrics

SPLIT_SEED = 42  # training.train's default seed: the same IMDB test split
LIMIT_SEED = 0  # which reviews --limit keeps
POSITIVE = ID2LABEL[LABEL2ID["positive"]]
SYSTEMS = {"model": "fine-tuned", "baseline": "TF-IDF + LR"}  # report names
SPEED_RUNS = {1: 20, 32: 5}  # batch size -> timed runs (the median is reported)

SETS = {
    "imdb-test": "IMDB movie reviews, held-out test split (in domain)",
    "uci-amazon": "UCI Amazon product review sentences (out of domain)",
    "uci-yelp": "UCI Yelp restaurant review sentences (out of domain)",
    "fine-foods-5star": (
        'Amazon Fine Foods, measuring "great (5 stars) vs the rest (1-4 stars)", not plain sentiment: '
        "a happy 4-star review counts as negative here"
    ),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- data -------------------------------------------------------------------------------


def cap(data: datasets.LabelledSet, limit: int | None, seed: int = LIMIT_SEED) -> datasets.LabelledSet:
    """The first `limit` reviews after a fixed-seed shuffle (a sorted source would else give one class)."""
    if limit is None or limit >= len(data):
        return data
    indices = list(range(len(data)))
    random.Random(seed).shuffle(indices)
    return data.subset(indices[:limit], data.name)


def load_sets(limit: int | None = None) -> tuple[datasets.LabelledSet, dict[str, datasets.LabelledSet]]:
    """(IMDB train split for the baseline, evaluation sets by name), each capped at `limit`."""
    imdb = datasets.split(datasets.deduplicate(datasets.load_imdb()), seed=SPLIT_SEED)
    sets = {
        "imdb-test": imdb["test"],
        "uci-amazon": datasets.deduplicate(datasets.load_uci("amazon")),
        "uci-yelp": datasets.deduplicate(datasets.load_uci("yelp")),
        "fine-foods-5star": datasets.deduplicate(datasets.load_fine_foods()),
    }
    return cap(imdb["train"], limit), {name: cap(s, limit) for name, s in sets.items()}


# --- systems ----------------------------------------------------------------------------


def load_classifier(model_dir: Path, max_length: int, threads: int = 0):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
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


# --- context ----------------------------------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict:
    import sklearn
    import torch
    import transformers

    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "scikit_learn": sklearn.__version__,
        "cpu": cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
    }


def training_info(model_dir: Path) -> dict | None:
    path = model_dir / "training_info.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log(f"ignoring unreadable {path}: {err}")
        return None


def training_summary(info: dict | None) -> dict | None:
    if info is None:
        return None
    keep = ("command", "train_size", "best_validation_accuracy", "seconds_this_run", "hardware")
    summary = {k: info.get(k) for k in keep}
    summary["max_length"] = (info.get("args") or {}).get("max_length")
    return summary


# --- plots ------------------------------------------------------------------------------


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def plot_reliability(sets: dict[str, dict], path: Path) -> None:
    ncols = min(2, len(sets))
    nrows = math.ceil(len(sets) / ncols)
    fig, axes = _figure(nrows, ncols, (5.5 * ncols, 4.5 * nrows))
    for ax in axes.flat[len(sets) :]:
        ax.set_visible(False)
    for ax, (name, result) in zip(axes.flat, sets.items(), strict=False):
        ax.plot([0.5, 1], [0.5, 1], "k--", linewidth=1, label="perfect calibration")
        for system, style in (("model", "o-"), ("baseline", "s-")):
            metrics = result.get(system)
            if metrics is None:
                continue
            bins = [b for b in metrics["reliability"] if b["count"]]
            ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                style,
                label=f"{SYSTEMS[system]} (ECE {metrics['ece']:.3f})",
            )
        ax.set(xlim=(0.45, 1.02), ylim=(0, 1.02), xlabel="confidence", ylabel="accuracy")
        ax.set_title(f"{name} (n={result['size']})", fontsize=10)
        ax.legend(fontsize=8, loc="lower right")
    fig.savefig(path, dpi=110)


def plot_curves(log_history: list[dict], path: Path) -> bool:
    """Training loss and validation accuracy vs step; False when the log has neither."""
    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    val_loss = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    val_acc = [(e["step"], e["eval_accuracy"]) for e in log_history if "eval_accuracy" in e and "step" in e]
    if not (train or val_acc):
        return False
    fig, axes = _figure(1, 2, (11, 4))
    loss_ax, acc_ax = axes[0]
    if train:
        loss_ax.plot(*zip(*train, strict=True), label="training loss", linewidth=1)
    if val_loss:
        loss_ax.plot(*zip(*val_loss, strict=True), "o-", label="validation loss")
    loss_ax.set(xlabel="step", ylabel="loss", title="loss")
    loss_ax.legend(fontsize=8)
    if val_acc:
        acc_ax.plot(*zip(*val_acc, strict=True), "o-", color="tab:green")
    acc_ax.set(xlabel="step", ylabel="accuracy", title="validation accuracy")
    fig.savefig(path, dpi=110)
    return True


# --- report -----------------------------------------------------------------------------


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


def _num(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _system_rows(sets: dict[str, dict]):
    """(set name, set result, system key, report label, metrics) for each system that ran."""
    for name, result in sets.items():
        for system, label in SYSTEMS.items():
            if result.get(system) is not None:
                yield name, result, system, label, result[system]


def _quality_table(sets: dict[str, dict]) -> list[str]:
    lines = [
        "| set | reviews | system | accuracy | macro F1 | ROC-AUC | ECE |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result, system, label, m in _system_rows(sets):
        first = system == "model"
        lines.append(
            f"| {name if first else ''} | {result['size'] if first else ''} | {label} | {_num(m['accuracy'])} "
            f"| {_num(m['macro_f1'])} | {_num(m['roc_auc'])} | {_num(m['ece'])} |"
        )
    return lines


def _detail_table(sets: dict[str, dict]) -> list[str]:
    lines = [
        "| set | system | negative P / R / F1 | positive P / R / F1 | confusion [[TN, FP], [FN, TP]] |",
        "|---|---|---|---|---|",
    ]
    for name, _, _, label, m in _system_rows(sets):
        cells = [
            " / ".join(_num(m["per_class"][c][k], 2) for k in ("precision", "recall", "f1"))
            for c in ("negative", "positive")
        ]
        lines.append(f"| {name} | {label} | {cells[0]} | {cells[1]} | {m['confusion_matrix']['matrix']} |")
    return lines


def _speed_table(size: dict, speed_: dict) -> list[str]:
    lines = [
        "| system | parameters | size on disk | ms / review, batch 1 | ms / review, batch 32 |",
        "|---|---|---|---|---|",
    ]
    m = size["model"]
    disks = {"model": f"{_num(m['safetensors_mb'], 1)} MB ({m['stored_dtype']} safetensors)"}
    if size.get("baseline"):
        disks["baseline"] = f"{_num(size['baseline']['pickle_mb'], 1)} MB (pickle)"
    for system, disk in disks.items():
        s = speed_[system]
        lines.append(
            f"| {SYSTEMS[system]} | {_count(size[system]['parameters'])} | {disk} "
            f"| {_num(s['batch_1_ms_per_review'], 2)} | {_num(s['batch_32_ms_per_review'], 2)} |"
        )
    return lines


def to_markdown(result: dict) -> str:
    env, run = result["environment"], result["run"]
    lines = ["# Evaluation report", ""]
    lines.append(
        f"Model `{result['model']}`, max_length {result['max_length']} tokens (head+tail), fp32 on CPU; "
        f"evaluated {result['date']}."
    )
    if result["limit"] is not None:
        lines += ["", f"**Smoke run: at most {result['limit']} reviews per set (and baseline training set).**"]
    train_len = (result.get("training") or {}).get("max_length")
    if train_len and train_len != result["max_length"]:
        lines += [
            "",
            f"The model was fine-tuned with max_length {train_len}; it is evaluated here at {result['max_length']}.",
        ]
    lines += ["", "## Quality", "", *_quality_table(result["sets"]), "", "Sets:", ""]
    lines += [f"- **{name}** ({r['size']} reviews): {r['description']}." for name, r in result["sets"].items()]
    lines += [
        "",
        "Positive means p(positive) > 0.5. ECE: 15 equal-width bins over the confidence of the predicted label.",
    ]
    if result.get("baseline"):
        b = result["baseline"]
        lines += [
            "",
            f"Baseline: {b['description']}, fit on {b['train_size']} IMDB training reviews in {b['fit_seconds']} s.",
        ]
    lines += ["", "### Per class", "", *_detail_table(result["sets"])]
    lines += ["", "## Size and speed", "", *_speed_table(result["size"], result["speed"]), ""]
    lines.append(
        f"Median of {SPEED_RUNS[1]} (batch 1) and {SPEED_RUNS[32]} (batch 32) timed calls on IMDB test reviews, "
        f"tokenization included; {env['cpu']}, {env['torch_threads']} torch threads, "
        f"load average {run['load_average_1m']} when timing (other jobs on the machine inflate these times)."
    )
    lines += ["", "## Plots", "", "![reliability diagrams](reliability.png)", ""]
    lines.append(
        "![training curves](curves.png)" if result["curves"] else "No training log in the model folder: no curves."
    )
    lines += ["", f"torch {env['torch']}, transformers {env['transformers']}, scikit-learn {env['scikit_learn']}."]
    return "\n".join(lines) + "\n"


# --- driver -----------------------------------------------------------------------------


def evaluate(
    model_dir: str | Path,
    report_dir: str | Path,
    max_length: int = 256,
    limit: int | None = None,
    batch_size: int = 32,
    baseline: bool = True,
    threads: int = 0,
) -> dict:
    """Score the model (and the baseline) on every set; write the report files; return metrics.json's content.

    `threads`: torch intra-op threads, 0 for one per core. On a machine busy with other work,
    fewer threads than cores avoids oversubscription, which slows batch-1 inference badly."""
    import torch

    # SentimentClassifier.load sets the thread count process-wide; callers (tests) keep theirs.
    threads_before = torch.get_num_threads()
    try:
        return _evaluate(Path(model_dir), Path(report_dir), max_length, limit, batch_size, baseline, threads)
    finally:
        torch.set_num_threads(threads_before)


def _evaluate(
    model_dir: Path, report_dir: Path, max_length: int, limit: int | None, batch_size: int, baseline: bool, threads: int
) -> dict:
    report_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()

    train, sets = load_sets(limit)
    classifier = load_classifier(model_dir, max_length, threads)
    pipeline, fit_seconds = None, None
    if baseline:
        start = time.perf_counter()
        pipeline = fit_baseline(train)
        fit_seconds = round(time.perf_counter() - start, 1)
        log(f"baseline fit on {len(train)} reviews in {fit_seconds} s")

    results = {}
    for name, data in sets.items():
        start = time.perf_counter()
        probs = model_probabilities(classifier, data.texts, batch_size)
        log(f"{name}: {len(data)} reviews scored in {time.perf_counter() - start:.1f} s")
        results[name] = {
            "description": SETS[name],
            "size": len(data),
            "labels": {ID2LABEL[k]: data.labels.count(k) for k in sorted(ID2LABEL)},
            "load": data.report.to_dict(),
            "model": classification_metrics(data.labels, probs),
            "baseline": classification_metrics(data.labels, baseline_probabilities(pipeline, data.texts))
            if pipeline is not None
            else None,
        }

    timing_texts = sets["imdb-test"].texts
    load_average = round(os.getloadavg()[0], 2)
    speeds = {"model": speed(classifier.predict_texts, timing_texts)}
    sizes = {"model": model_size(classifier, model_dir)}
    if pipeline is not None:
        speeds["baseline"] = speed(lambda texts: baseline_probabilities(pipeline, texts), timing_texts)
        sizes["baseline"] = baseline_size(pipeline)

    info = training_info(model_dir)
    curves = bool(info and info.get("log_history")) and plot_curves(info["log_history"], report_dir / "curves.png")
    plot_reliability(results, report_dir / "reliability.png")

    result = {
        "model": os.path.relpath(model_dir),  # relative: reports get committed
        "max_length": max_length,
        "head_fraction": classifier.settings.head_fraction,
        "precision": "fp32",
        "batch_size": batch_size,
        "limit": limit,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "environment": environment(),
        "run": {"seconds": round(time.time() - started, 1), "load_average_1m": load_average},
        "sets": results,
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
    p.add_argument("--model", required=True, help="checkpoint folder (e.g. runs/release/model)")
    p.add_argument("--report-dir", required=True, help="where metrics.json, report.md and the plots go")
    p.add_argument("--max-length", type=int, default=256, help="tokens per review (head+tail truncation)")
    p.add_argument("--limit", type=int, help="at most N reviews per set, baseline training included (tests, CI)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: one per core)")
    p.add_argument("--no-baseline", action="store_true", help="skip the TF-IDF + logistic regression baseline")
    args = p.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1")
    if args.batch_size < 1 or args.threads < 0:
        p.error("--batch-size must be >= 1 and --threads >= 0")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    result = evaluate(
        args.model, args.report_dir, args.max_length, args.limit, args.batch_size, not args.no_baseline, args.threads
    )
    for name, r in result["sets"].items():
        base = f", baseline {r['baseline']['accuracy']:.3f}" if r["baseline"] else ""
        print(f"{name}: accuracy {r['model']['accuracy']:.3f}{base} (n={r['size']})")
    print(f"report written to {Path(args.report_dir) / 'report.md'}")
    return result


if __name__ == "__main__":
    main()
