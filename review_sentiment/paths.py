"""Where the project keeps things; each location can be moved with an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CONFIG_DIR = REPO / "config"
# Per-model settings packed into the .mar (CPU defaults; model-config.gpu.yaml for GPUs).
MODEL_CONFIG = CONFIG_DIR / "model-config.yaml"
HANDLER_FILE = REPO / "handler" / "sentiment_handler.py"
# The released fine-tuned checkpoint (see models/review-sentiment/MODEL_CARD.md).
RELEASED_MODEL = REPO / "models" / "review-sentiment"
MODEL_STORE = Path(os.environ.get("SENTIMENT_MODEL_STORE", REPO / "model_store"))
# One running server's folder: key_file.json, endpoints.json, logs/, tmp/.
RUN_DIR = Path(os.environ.get("SENTIMENT_RUN_DIR", REPO / "run"))
MODEL_NAME = os.environ.get("SENTIMENT_MODEL_NAME", "sentiment")
