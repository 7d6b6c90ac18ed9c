"""The UI's settings, each with its environment variable SENTIMENT_UI_<NAME> (core/env.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from review_sentiment.client.many import DEFAULT_CONCURRENCY
from review_sentiment.core.env import ENV_PREFIX, read_settings

UI_ENV_PREFIX = f"{ENV_PREFIX}UI_"


@dataclass(frozen=True)
class UiSettings:
    # Address the page listens on; beyond loopback it requires sign-in (SENTIMENT_UI_AUTH_FILE).
    host: str = "127.0.0.1"
    # Port of the page.
    port: int = 7860
    # Requests in flight in batch mode.
    concurrency: int = DEFAULT_CONCURRENCY
    # Reviews per uploaded batch.
    max_rows: int = 5000
    # Classifications and explanations served at once (Gradio's default, 1, queues every user
    # behind the one before); batches run at half that, each keeping `concurrency` requests in
    # flight: 2 x 16 stays well inside TorchServe's job_queue_size (200).
    concurrent_users: int = 4
    # Seconds a batch's result file (it holds review text) is kept for download.
    result_ttl_s: float = 600

    @classmethod
    def from_env(cls, environ=os.environ) -> UiSettings:
        return read_settings(cls, UI_ENV_PREFIX, environ)
