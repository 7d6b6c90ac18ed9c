"""Data report: sizes, label balance, and length distributions in characters and tokens."""

from __future__ import annotations

import statistics

from transformers import PreTrainedTokenizerBase

from review_sentiment.markdown import markdown_table
from training.data import LabelledSet
from training.labels import ID2LABEL


def _quantiles(values: list[int]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "mean": round(statistics.fmean(ordered), 1),
        "p50": pick(0.5),
        "p90": pick(0.9),
        "p99": pick(0.99),
        "max": ordered[-1],
    }


def describe(data: LabelledSet, tokenizer: PreTrainedTokenizerBase, max_length: int) -> dict:
    tokens = [len(ids) for ids in tokenizer(data.texts, add_special_tokens=True, verbose=False)["input_ids"]]
    return {
        "name": data.name,
        "size": len(data),
        "labels": {ID2LABEL[k]: data.labels.count(k) for k in sorted(ID2LABEL)},
        "chars": _quantiles([len(t) for t in data.texts]),
        "tokens": _quantiles(tokens),
        f"share_over_{max_length}_tokens": round(sum(n > max_length for n in tokens) / len(tokens), 3),
    }


def to_markdown(sections: list[dict], loads: list[dict]) -> str:
    lines = [
        "# Data report",
        "",
        "## Loading",
        "",
        markdown_table(
            ("source", "rows", "kept", "not used (why)"),
            map(_load_row, loads),
        ),
        "",
        "## Sets",
        "",
        markdown_table(
            (
                "set",
                "size",
                "negative",
                "positive",
                "chars p50 / p90 / max",
                "tokens p50 / p90 / max",
                "over max_length",
            ),
            map(_set_row, sections),
        ),
    ]
    return "\n".join(lines) + "\n"


def _load_row(load: dict) -> tuple:
    not_used = ", ".join(f"{k}: {v}" for k, v in load["bad"].items() if v) or "none"
    return load["source"], load["rows"], load["kept"], not_used


def _set_row(section: dict) -> tuple:
    over = next(v for k, v in section.items() if k.startswith("share_over_"))
    c, t = section["chars"], section["tokens"]
    labels = section["labels"]
    return (
        section["name"],
        section["size"],
        labels["negative"],
        labels["positive"],
        f"{c['p50']} / {c['p90']} / {c['max']}",
        f"{t['p50']} / {t['p90']} / {t['max']}",
        f"{over:.1%}",
    )
