"""The star-rated clothing reviews: one online retailer's Women's E-Commerce Clothing Reviews.

Each review gives two examples, its text and its title (titles are the short product phrases
people paste). Stars 4-5 are positive, 1-2 negative; 3 stars (mixed) are dropped and counted.
The split is by product (`Clothing ID`), so no test product is ever trained on: its test part
is a held-out, star-labelled product test set, scored for reviews and titles separately.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

from training import sources
from training.data import LabelledSet, LoadReport, clean_text, deduplicate
from training.labels import LABEL2ID

SPLIT_FRACTIONS = {"test": 0.1, "validation": 0.1}  # of the rows; the rest is train


@dataclass(frozen=True)
class Review:
    product: int
    title: str
    text: str
    label: int


def star_label(stars: int) -> int | None:
    if stars >= 4:
        return LABEL2ID["positive"]
    if stars <= 2:
        return LABEL2ID["negative"]
    return None


def load_reviews() -> tuple[list[Review], LoadReport]:
    """Every row with a star label and a text or a title; the rest counted by reason."""
    table = sources.clothing_table()
    report = LoadReport("clothing", rows=len(table))
    reviews = []
    for product, title, text, stars in zip(
        table["Clothing ID"], table["Title"], table["Review Text"], table["Rating"], strict=True
    ):
        label = star_label(int(stars))
        title = clean_text(title) if isinstance(title, str) else ""
        text = clean_text(text) if isinstance(text, str) else ""
        if label is None:
            report.bad["3 stars (mixed), dropped"] += 1
        elif not title and not text:
            report.bad["empty text"] += 1
        else:
            reviews.append(Review(int(product), title, text, label))
    return reviews, report


def split_by_product(reviews: list[Review], seed: int) -> dict[str, list[Review]]:
    """Products in a seeded order, dealt to test, then validation, until each holds its share of
    the rows; the remaining products train. A product's reviews all land in one part."""
    by_product: dict[int, list[Review]] = {}
    for review in reviews:
        by_product.setdefault(review.product, []).append(review)
    products = sorted(by_product)
    random.Random(seed).shuffle(products)
    parts: dict[str, list[Review]] = {"test": [], "validation": [], "train": []}
    targets = {name: fraction * len(reviews) for name, fraction in SPLIT_FRACTIONS.items()}
    for product in products:
        part = next((n for n in ("test", "validation") if len(parts[n]) < targets[n]), "train")
        parts[part].extend(by_product[product])
    return parts


def _texts(reviews: list[Review], name: str, field: str, report: LoadReport) -> LabelledSet:
    chosen = [(getattr(r, field), r.label) for r in reviews if getattr(r, field)]
    part = LabelledSet(name, [t for t, _ in chosen], [y for _, y in chosen], report)
    return deduplicate(part)


def splits(seed: int) -> dict[str, LabelledSet]:
    """train and validation (review texts and titles together), test (review texts) and
    test-titles (titles), each deduplicated."""
    reviews, report = load_reviews()
    parts = split_by_product(reviews, seed)
    out = {}
    for name in ("train", "validation"):
        texts = _texts(parts[name], f"clothing-{name}", "text", report)
        titles = _texts(parts[name], f"clothing-{name}", "title", LoadReport("clothing-titles"))
        out[name] = deduplicate(
            LabelledSet(f"clothing-{name}", texts.texts + titles.texts, texts.labels + titles.labels, report)
        )
    out["test"] = _texts(parts["test"], "clothing-reviews-test", "text", LoadReport("clothing-reviews-test"))
    out["test-titles"] = _texts(parts["test"], "clothing-titles-test", "title", LoadReport("clothing-titles-test"))
    return out


def product_counts(seed: int) -> Counter:
    """Products per part: what the data report states beside the row counts."""
    reviews, _ = load_reviews()
    return Counter({name: len({r.product for r in rs}) for name, rs in split_by_product(reviews, seed).items()})
