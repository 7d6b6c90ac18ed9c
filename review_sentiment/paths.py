"""Where the project keeps things. The fixed places are constants; the movable ones are settings
(SENTIMENT_MODEL_STORE, SENTIMENT_RUN_DIR, SENTIMENT_MODEL_NAME: see review_sentiment/settings.py),
read from the environment at each call, so a value set after import is seen."""

from __future__ import annotations

from pathlib import Path

from review_sentiment.settings import REPO, ServiceSettings

CONFIG_DIR = REPO / "config"
# Per-model settings packed into the .mar (CPU defaults; model-config.gpu.yaml for GPUs).
MODEL_CONFIG = CONFIG_DIR / "model-config.yaml"
HANDLER_FILE = REPO / "handler" / "sentiment_handler.py"
# The released fine-tuned checkpoint (see models/review-sentiment/MODEL_CARD.md).
RELEASED_MODEL = REPO / "models" / "review-sentiment"
# The accurate model on request (SENTIMENT_ACCURATE_MODEL): its head and licence notice (the
# encoder comes from the data cache), its model-config, and the name it is served under.
ACCURATE_MODEL = REPO / "models" / "sentiment-accurate"
ACCURATE_MODEL_CONFIG = CONFIG_DIR / "model-config.accurate.yaml"
ACCURATE_MODEL_NAME = "sentiment-accurate"


def model_store() -> Path:
    return ServiceSettings.from_env().model_store


def run_dir() -> Path:
    return ServiceSettings.from_env().run_dir


def model_name() -> str:
    return ServiceSettings.from_env().model_name


def __getattr__(name: str) -> object:
    # The former module constants, frozen at import: say what replaced them.
    if name in ("MODEL_STORE", "RUN_DIR", "MODEL_NAME"):
        raise AttributeError(
            f"paths.{name} is gone: call paths.{name.lower()}() (read from the environment at each call)"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
