"""The evaluation sets of a checkpoint: rebuilt from the data its training_info.json records
(kind, sources, seed, balance), so that only rows the model never trained on are scored.

A model trained on the mix is scored on every source's own test split and on the held-out
UCI sets; one trained on IMDB or on a user's CSV on that set's test split (same seed and
balance as training) and on the held-out sets.
"""

from __future__ import annotations

import json
from pathlib import Path

from review_sentiment.progress import log
from training import data as datasets
from training import mix

LIMIT_SEED = 0  # which reviews --limit keeps
DEFAULT_SPEC = {"kind": "imdb", "seed": 42, "balance": False}  # how v1 was trained (no data_spec recorded)
# The sets that stand for product reviews: the release decision averages them (v3's rule; v2's
# had Fine Foods' 5-stars-vs-rest in the clothing reviews' place).
PRODUCT_SETS = ("uci-amazon", "uci-yelp", "clothing-reviews-test")

DESCRIPTIONS = {
    "imdb-test": "IMDB movie reviews, held-out test split",
    "rotten-tomatoes-test": "Rotten Tomatoes critics' snippets, held-out test split",
    "tweets-test": "CrowdFlower customer tweets (airlines, Apple, ...), held-out test split",
    "fine-foods-5star-test": (
        'Amazon Fine Foods test part, measuring "great (5 stars) vs the rest (1-4 stars)", not plain '
        "sentiment: a happy 4-star review counts as negative here"
    ),
    "drugs-test": "drugs.com patient reviews, the package's test part",
    "clothing-reviews-test": "Women's clothing reviews, 1-2 vs 4-5 stars, products never trained on",
    "clothing-titles-test": "Titles of those clothing reviews (short product phrases), 1-2 vs 4-5 stars",
    "uci-amazon": "UCI Amazon product review sentences (never trained on)",
    "uci-yelp": "UCI Yelp restaurant review sentences (never trained on)",
}


def training_info(model_dir: Path) -> dict | None:
    path = Path(model_dir) / "training_info.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        log(f"ignoring unreadable {path}: {err}")
        return None


def data_spec(info: dict | None) -> dict:
    """The recorded data spec; for checkpoints older than it, rebuilt from the recorded args."""
    if info is None:
        return dict(DEFAULT_SPEC)
    if "data_spec" in info:
        return info["data_spec"]
    args = info.get("args") or {}
    data = args.get("data", "imdb")
    spec = {
        "kind": data if data == "imdb" else "csv",
        "seed": args.get("seed", 42),
        "balance": bool(args.get("balance")),
    }
    if spec["kind"] == "csv":
        spec |= {k: args.get(k) for k in ("text_column", "label_column", "positive", "negative")} | {"path": data}
    return spec


def cap(data: datasets.LabelledSet, limit: int | None, seed: int = LIMIT_SEED) -> datasets.LabelledSet:
    """The reviews --limit keeps (a fixed-seed sample)."""
    return datasets.sample(data, limit, seed)


def _single_set(spec: dict) -> datasets.LabelledSet:
    if spec["kind"] == "imdb":
        data = datasets.load_imdb()
    else:
        data = datasets.load_csv(
            spec["path"], spec.get("text_column"), spec.get("label_column"), spec.get("positive"), spec.get("negative")
        )
    data = datasets.deduplicate(data)
    return datasets.balance(data, spec["seed"]) if spec.get("balance") else data


def held_out_sets(spec: dict, limit: int | None = None) -> tuple[datasets.LabelledSet, dict[str, datasets.LabelledSet]]:
    """(the model's training set, for the baseline; evaluation sets by name), each capped at `limit`."""
    if spec["kind"] == "mix":
        m = mix.build_mix(spec["sources"], spec["seed"])
        train, sets = m.train, dict(m.tests)
    else:
        splits = datasets.split(_single_set(spec), spec["seed"])
        name = "imdb-test" if spec["kind"] == "imdb" else f"{Path(spec['path']).stem}-test"
        train, sets = splits["train"], {name: splits["test"]}
        # The Fine Foods test part and the UCI sets: never in an IMDB or CSV training set.
        sets |= {"fine-foods-5star-test": datasets.deduplicate(datasets.load_fine_foods("test"))}
        sets |= {name: load() for name, load in mix.HELD_OUT.items()}
    return cap(train, limit), {name: cap(s, limit) for name, s in sets.items()}


def description(name: str) -> str:
    return DESCRIPTIONS.get(name, f"{name.removesuffix('-test')}: the training data's own held-out test split")
