"""Where the project keeps things; the movable ones come from the settings (SENTIMENT_MODEL_STORE,
SENTIMENT_RUN_DIR, SENTIMENT_MODEL_NAME: see review_sentiment/settings.py)."""

from __future__ import annotations

from review_sentiment.settings import REPO, SERVICE

CONFIG_DIR = REPO / "config"
# Per-model settings packed into the .mar (CPU defaults; model-config.gpu.yaml for GPUs).
MODEL_CONFIG = CONFIG_DIR / "model-config.yaml"
HANDLER_FILE = REPO / "handler" / "sentiment_handler.py"
# The released fine-tuned checkpoint (see models/review-sentiment/MODEL_CARD.md).
RELEASED_MODEL = REPO / "models" / "review-sentiment"
MODEL_STORE = SERVICE.model_store
RUN_DIR = SERVICE.run_dir
MODEL_NAME = SERVICE.model_name
