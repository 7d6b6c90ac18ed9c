"""The evaluation report: reliability diagrams, training curves and the Markdown tables.

Plain functions of the result dict that training.evaluate builds (and dumps as metrics.json).
"""

from __future__ import annotations

import math
from pathlib import Path

from review_sentiment.markdown import markdown_table
from training.scoring import LENGTH_BUCKETS, SPEED_RUNS

# --- plots ------------------------------------------------------------------------------


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    # A bare Figure on the Agg canvas: no pyplot global state, no display needed.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)


def plot_reliability(sets: dict[str, dict], systems: dict[str, str], path: Path) -> None:
    ncols = min(2, len(sets))
    nrows = math.ceil(len(sets) / ncols)
    fig, axes = _figure(nrows, ncols, (5.5 * ncols, 4.5 * nrows))
    for ax in axes.flat[len(sets) :]:
        ax.set_visible(False)
    for ax, (name, result) in zip(axes.flat, sets.items(), strict=False):
        ax.plot([0.5, 1], [0.5, 1], "k--", linewidth=1, label="perfect calibration")
        for system, style in zip(systems, ("o-", "^-", "s-"), strict=False):
            metrics = result.get(system)
            if metrics is None:
                continue
            bins = [b for b in metrics["reliability"] if b["count"]]
            ax.plot(
                [b["confidence"] for b in bins],
                [b["accuracy"] for b in bins],
                style,
                label=f"{systems[system]} (ECE {metrics['ece']:.3f})",
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


def _system_rows(sets: dict[str, dict], systems: dict[str, str]):
    """(set name, set result, first row of its set, report label, metrics) for each system that ran."""
    for name, result in sets.items():
        ran = [(system, label) for system, label in systems.items() if result.get(system) is not None]
        for i, (system, label) in enumerate(ran):
            yield name, result, i == 0, label, result[system]


QUALITY_KEYS = ("accuracy", "macro_f1", "roc_auc", "ece")
SPEED_KEYS = ("batch_1_ms_per_review", "batch_32_ms_per_review")


def _quality_table(sets: dict[str, dict], systems: dict[str, str]) -> str:
    rows = [
        (name if first else "", result["size"] if first else "", label, *(_num(m[k]) for k in QUALITY_KEYS))
        for name, result, first, label, m in _system_rows(sets, systems)
    ]
    return markdown_table(("set", "reviews", "system", "accuracy", "macro F1", "ROC-AUC", "ECE"), rows)


def _detail_table(sets: dict[str, dict], systems: dict[str, str]) -> str:
    headers = ("set", "system", "negative P / R / F1", "positive P / R / F1", "confusion [[TN, FP], [FN, TP]]")
    rows = []
    for name, _, _, label, m in _system_rows(sets, systems):
        cells = [
            " / ".join(_num(m["per_class"][c][k], 2) for k in ("precision", "recall", "f1"))
            for c in ("negative", "positive")
        ]
        rows.append((name, label, *cells, m["confusion_matrix"]["matrix"]))
    return markdown_table(headers, rows)


def _length_table(result: dict) -> str:
    """Accuracy per length bucket (characters), each set and all sets pooled, per system."""
    systems = result["systems"]
    headers = ("set", "system", *(f"{b} chars" for b, _, _ in LENGTH_BUCKETS))
    sets = [(name, r["by_length"]) for name, r in result["sets"].items()] + [("all sets", result["by_length"])]
    rows = []
    for name, by_length in sets:
        for i, system in enumerate(s for s in systems if s in by_length):
            cells = (
                f"{_num(c['accuracy'])} (n={c['n']})" if c["n"] else "-"
                for c in (by_length[system][b] for b, _, _ in LENGTH_BUCKETS)
            )
            rows.append((name if i == 0 else "", systems[system], *cells))
    return markdown_table(headers, rows)


def _speed_table(size: dict, speed_: dict, systems: dict[str, str]) -> str:
    disks = {
        system: f"{_num(m['safetensors_mb'], 1)} MB ({m['stored_dtype']} safetensors)"
        for system, m in size.items()
        if system != "baseline"
    }
    if size.get("baseline"):
        disks["baseline"] = f"{_num(size['baseline']['pickle_mb'], 1)} MB (pickle)"
    rows = [
        (systems[system], _count(size[system]["parameters"]), disk, *(_num(speed_[system][k], 2) for k in SPEED_KEYS))
        for system, disk in disks.items()
    ]
    headers = ("system", "parameters", "size on disk", "ms / review, batch 1", "ms / review, batch 32")
    return markdown_table(headers, rows)


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
    systems = result["systems"]
    if result.get("compare"):
        lines += ["", f"Compared with `{result['compare']}` on the same sets."]
    lines += ["", "## Quality", "", _quality_table(result["sets"], systems), "", "Sets:", ""]
    lines += [f"- **{name}** ({r['size']} reviews): {r['description']}." for name, r in result["sets"].items()]
    spec = result["data_spec"]
    lines += [
        "",
        f"The sets follow the model's recorded training data ({spec['kind']}, seed {spec['seed']}"
        + (f", sources {', '.join(spec['sources'])}" if spec.get("sources") else "")
        + (f", balance {spec['balance']}" if spec.get("balance") is not None else "")
        + "): only rows it never trained on are scored.",
    ]
    lines += [
        "",
        "Positive means p(positive) > 0.5. ECE: 15 equal-width bins over the confidence of the predicted label.",
    ]
    if result.get("baseline"):
        b = result["baseline"]
        lines += [
            "",
            f"Baseline: {b['description']}, fit on the model's {b['train_size']} training reviews "
            f"in {b['fit_seconds']} s.",
        ]
    lines += ["", "### By length", "", _length_table(result)]
    lines += ["", "### Per class", "", _detail_table(result["sets"], systems)]
    lines += ["", "## Size and speed", "", _speed_table(result["size"], result["speed"], systems), ""]
    lines.append(
        f"Median of {SPEED_RUNS[1]} (batch 1) and {SPEED_RUNS[32]} (batch 32) timed calls on the first set's reviews, "
        f"tokenization included; {env['cpu']}, {env['torch_threads']} torch threads, "
        f"load average {run['load_average_1m']} when timing (other jobs on the machine inflate these times)."
    )
    lines += ["", "## Plots", "", "![reliability diagrams](reliability.png)", ""]
    lines.append(
        "![training curves](curves.png)" if result["curves"] else "No training log in the model folder: no curves."
    )
    lines += ["", f"torch {env['torch']}, transformers {env['transformers']}, scikit-learn {env['scikit_learn']}."]
    return "\n".join(lines) + "\n"
