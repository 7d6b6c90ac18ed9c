"""Confidence calibration stored with a checkpoint."""

from __future__ import annotations

# Temperatures outside this range mean a broken fit (e.g. a perfectly separated validation set
# drives T towards 0): training clamps into it, loading refuses anything outside it.
MIN_TEMPERATURE, MAX_TEMPERATURE = 0.05, 20.0


def calibration_temperature(config: object) -> float:
    """The temperature fitted on validation data at training time (training.train), stored in the
    checkpoint's config.json; 1.0 (no scaling) for checkpoints without one. Scaling the logits
    changes the confidences, never which label wins."""
    value = float(getattr(config, "calibration_temperature", None) or 1.0)
    if not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise ValueError(
            f"calibration_temperature {value} is outside {MIN_TEMPERATURE}..{MAX_TEMPERATURE}: a broken checkpoint?"
        )
    return value
