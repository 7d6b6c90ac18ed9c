"""Sentences from the product sources' training reviews: the short statements people type.

The distillation pool: the teacher labels these sentences with soft probabilities (no human
label exists for a sentence of a review), and the student learns from them. Only training
parts are split, and a sentence that appears in any evaluation set is left out.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable

SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
MIN_WORDS, MAX_WORDS = 2, 40
# Share of the pool per product source (train parts of training.mix).
POOL_SHARES = {"clothing": 0.6, "fine-foods": 0.2, "drugs": 0.2}


def sentences(review: str) -> list[str]:
    out = []
    for part in SENTENCE_END.split(review):
        part = part.strip(" -\"'")
        if MIN_WORDS <= len(part.split()) <= MAX_WORDS and any(c.isalpha() for c in part):
            out.append(part)
    return out


def pool(reviews_by_source: dict[str, Iterable[str]], size: int, seed: int, exclude: set[str]) -> list[str]:
    """Up to `size` distinct sentences, each source's share drawn by a seeded sample."""
    rng = random.Random(seed)
    chosen: list[str] = []
    seen = set(exclude)
    for source, share in POOL_SHARES.items():
        found = sorted({s for r in reviews_by_source.get(source, ()) for s in sentences(r)} - seen)
        rng.shuffle(found)
        taken = found[: int(size * share)]
        seen.update(taken)
        chosen += taken
    return chosen
