"""Project-wide settings: where things live and how the server listens.

Every setting is a field with its documented default and an environment twin (SENTIMENT_<NAME>),
read by the one loader in `core/env.py`; the inference settings (`core/settings.py`), the
endpoints (`endpoints.py`) and the UI's (`ui/app.py`) are read the same way.
`python -m review_sentiment settings` prints them all with their variables and current values.
Settings are read when they are used (`ServiceSettings.from_env()`), never frozen at import, so
a variable set after import is seen; the offline switches are in `core/offline.py`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from review_sentiment.core.env import ENV_PREFIX, read_settings

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ServiceSettings:
    # Built model archives (.mar) that TorchServe loads.
    model_store: Path = REPO / "model_store"
    # One running server's folder: key_file.json, endpoints.json, logs/, tmp/.
    run_dir: Path = REPO / "run"
    # The model's name in TorchServe's URLs (/predictions/<model_name>).
    model_name: str = "sentiment"
    # Address TorchServe listens on (0.0.0.0: every interface, then keep token authorization on).
    bind: str = "127.0.0.1"
    # Token authorization on TorchServe's APIs; off only on a trusted network (SENTIMENT_AUTH=off).
    auth: bool = True
    # Also register `sentiment-accurate` (EmbeddingGemma-300M + head, Gemma Terms of Use; slower,
    # more accurate: docs/benchmarks.md) beside the default model; its .mar: `make archive-accurate`.
    accurate_model: bool = False
    # Downloaded dataset archives (training and evaluation), each checked against a pinned sha256.
    data_cache: Path = REPO / ".cache" / "data"

    @classmethod
    def from_env(cls, environ=os.environ) -> ServiceSettings:
        return read_settings(cls, ENV_PREFIX, environ)
