"""A model-config (the .mar's per-model settings: workers, batching, the handler's section) as a
dict with some values changed: how benchmarks and tests describe the server they start."""

from __future__ import annotations

import copy
from pathlib import Path

import yaml

from review_sentiment import paths


def model_config(base: dict | Path = paths.MODEL_CONFIG, **overrides) -> dict:
    """`base` (a model-config.yaml or its dict, left unchanged) with top-level `overrides`
    replacing its keys and `handler` overrides merged into its handler section."""
    config = copy.deepcopy(base) if isinstance(base, dict) else yaml.safe_load(Path(base).read_text())
    handler = {**config.get("handler", {}), **overrides.pop("handler", {})}
    return {**config, **overrides, "handler": handler}
