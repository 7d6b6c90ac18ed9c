"""Confidence calibration stored with a checkpoint."""

from __future__ import annotations


def calibration_temperature(config: object) -> float:
    """The temperature fitted on validation data at training time (training.train), stored in the
    checkpoint's config.json; 1.0 (no scaling) for checkpoints without one. Scaling the logits
    changes the confidences, never which label wins."""
    value = float(getattr(config, "calibration_temperature", None) or 1.0)
    if not 0.05 <= value <= 20:
        raise ValueError(f"calibration_temperature {value} is outside 0.05..20: a broken checkpoint?")
    return value
