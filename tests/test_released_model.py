"""Quality regression: the released checkpoint still scores what its model card says."""

from __future__ import annotations

import json

import pytest

from review_sentiment.paths import RELEASED_MODEL
from training.release import REGRESSION_SETS, regression_check

pytestmark = pytest.mark.quality


def test_released_model_matches_its_model_card():
    """A movie set and a product set, each held out from the model's own training data."""
    recorded = json.loads((RELEASED_MODEL / "metrics.json").read_text())["regression_check"]
    assert set(recorded["sets"]) == set(REGRESSION_SETS)
    n = {r["n"] for r in recorded["sets"].values()}.pop()
    measured = regression_check(RELEASED_MODEL, recorded["max_length"], n)
    card = (RELEASED_MODEL / "MODEL_CARD.md").read_text()
    for name, want in recorded["sets"].items():
        got = measured["sets"][name]
        assert got["n"] == want["n"]
        assert abs(got["accuracy"] - want["accuracy"]) <= 0.01, (name, got, want)
        # The card states the figure being checked, on the regression-check line itself.
        line = next(line for line in card.splitlines() if "Regression check" in line or "regression check" in line)
        block = card[card.index(line) :].split("\n\n")[0]
        assert f"{want['accuracy']:.1%}" in block, (name, want)


def test_released_checkpoint_is_what_serving_expects():
    config = json.loads((RELEASED_MODEL / "config.json").read_text())
    assert config["model_type"] == "distilbert"
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["dtype"] == "float16"
    size_mb = (RELEASED_MODEL / "model.safetensors").stat().st_size / 1e6
    assert 40 < size_mb < 50  # fp16, 22.7M parameters
