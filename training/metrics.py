"""Classification and calibration metrics from labels and positive-class probabilities.

Pure functions returning plain JSON-serialisable dicts (floats, ints, lists, None), so the
evaluation report can be dumped with `json.dumps` as it is.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import confusion_matrix, precision_recall_fscore_support, roc_auc_score

from training.labels import ID2LABEL

ECE_BINS = 15
THRESHOLD = 0.5  # positive iff p(positive) > 0.5: ties go to "negative", as argmax does in the classifier


def _arrays(labels: Sequence[int], probs: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probs, dtype=float)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels and probabilities must be 1-D and the same length, got {y.shape} and {p.shape}")
    if len(y) == 0:
        raise ValueError("no examples to score")
    if not np.isin(y, list(ID2LABEL)).all():
        raise ValueError(f"labels must be in {sorted(ID2LABEL)}")
    if ((p < 0) | (p > 1)).any():
        raise ValueError("probabilities must lie within [0, 1]")
    return y, p


def predicted_labels(probs: Sequence[float]) -> np.ndarray:
    return (np.asarray(probs, dtype=float) > THRESHOLD).astype(int)


def confidences(probs: Sequence[float]) -> np.ndarray:
    """Probability of the predicted label (>= 0.5 for two classes)."""
    p = np.asarray(probs, dtype=float)
    return np.where(predicted_labels(p) == 1, p, 1.0 - p)


def reliability(labels: Sequence[int], probs: Sequence[float], n_bins: int = ECE_BINS) -> list[dict]:
    """Reliability-diagram data: per equal-width confidence bin over [0, 1], its count, mean
    confidence and accuracy (None for empty bins). Bins are (lower, upper], the first closed,
    as in Guo et al. (2017); with two classes the bins below 0.5 are always empty."""
    y, p = _arrays(labels, probs)
    conf = confidences(p)
    correct = predicted_labels(p) == y
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.searchsorted(edges[1:-1], conf, side="left")  # conf == edge goes to the lower bin
    bins = []
    for b in range(n_bins):
        member = index == b
        count = int(member.sum())
        bins.append(
            {
                "lower": float(edges[b]),
                "upper": float(edges[b + 1]),
                "count": count,
                "confidence": float(conf[member].mean()) if count else None,
                "accuracy": float(correct[member].mean()) if count else None,
            }
        )
    return bins


def expected_calibration_error(labels: Sequence[int], probs: Sequence[float], n_bins: int = ECE_BINS) -> float:
    """ECE: count-weighted mean |accuracy - confidence| over the reliability bins."""
    bins = reliability(labels, probs, n_bins)
    total = sum(b["count"] for b in bins)
    return float(sum(b["count"] * abs(b["accuracy"] - b["confidence"]) for b in bins if b["count"]) / total)


def roc_auc(labels: Sequence[int], probs: Sequence[float]) -> float | None:
    """None when only one class is present (AUC is undefined, sklearn would raise)."""
    y, p = _arrays(labels, probs)
    return float(roc_auc_score(y, p)) if len(np.unique(y)) == 2 else None


def classification_metrics(labels: Sequence[int], probs: Sequence[float], n_bins: int = ECE_BINS) -> dict:
    """Everything the evaluation report shows for one system on one set."""
    y, p = _arrays(labels, probs)
    pred = predicted_labels(p)
    ids = sorted(ID2LABEL)
    precision, recall, f1, support = precision_recall_fscore_support(y, pred, labels=ids, zero_division=0)
    per_class = {
        ID2LABEL[i]: {
            "precision": float(precision[k]),
            "recall": float(recall[k]),
            "f1": float(f1[k]),
            "support": int(support[k]),
        }
        for k, i in enumerate(ids)
    }
    return {
        "n": int(len(y)),
        "accuracy": float((pred == y).mean()),
        "macro_f1": float(np.mean(f1)),
        "per_class": per_class,
        "roc_auc": roc_auc(y, p),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p, n_bins),
        "confusion_matrix": {
            "labels": [ID2LABEL[i] for i in ids],  # rows: true label, columns: predicted label
            "matrix": confusion_matrix(y, pred, labels=ids).tolist(),
        },
        "reliability": reliability(y, p, n_bins),
    }
