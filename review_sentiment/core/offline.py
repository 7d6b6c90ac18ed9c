"""The offline switches: nothing the project runs calls the internet (no Hugging Face Hub lookups,
no Gradio telemetry).

Each process sets them where it starts (the `review-sentiment` entry point, the handler's
initialize, the UI's main, the tests), never on import, and the launcher passes them on to the
TorchServe processes it starts. Part of the core, so the handler finds it inside the `.mar`.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}


def apply_offline(environ: MutableMapping[str, str] = os.environ) -> None:
    """Set each offline variable the environment does not set already (an explicit value wins).
    Call it before importing transformers, huggingface_hub or gradio: they read some at import."""
    for name, value in OFFLINE_ENV.items():
        environ.setdefault(name, value)
