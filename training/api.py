"""What other packages (the benchmarks) use of training: a small, stable surface over its
internals (eval_sets, scoring, metrics), so those can change without breaking them."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from training.data import LabelledSet
from training.eval_sets import data_spec, held_out_sets, training_info
from training.metrics import predicted_labels
from training.scoring import model_probabilities
from training.tiny_model import make_tiny_checkpoint

__all__ = [
    "LabelledSet",
    "accuracy",
    "evaluation_sets",
    "make_tiny_checkpoint",
    "model_probabilities",
    "predicted_labels",
]


def evaluation_sets(checkpoint: Path, limit: int | None = None) -> dict[str, LabelledSet]:
    """The sets `checkpoint` was never trained on (from its recorded data spec), each capped at `limit`."""
    return held_out_sets(data_spec(training_info(checkpoint)), limit)[1]


def accuracy(classifier, texts: Sequence[str], labels: Sequence[int], batch_size: int = 32) -> float:
    """Share of `texts` that `classifier` (the serving core) labels right."""
    probs = model_probabilities(classifier, texts, batch_size)
    return float((predicted_labels(probs) == np.asarray(labels)).mean())
