"""What a checkpoint folder holds, without importing torch (the archive and the versions read it).

Two kinds: a fine-tuned Hugging Face classifier (`model.safetensors` beside its tokenizer), or a
pooled-head checkpoint (`sentiment-accurate`, core/pooled.py): `config.json` of kind "pooled",
`head.safetensors`, the encoder's Hugging Face folder in `encoder/`, and its licence notice.
"""

from __future__ import annotations

import json
from pathlib import Path

CONFIG = "config.json"
WEIGHTS_FILE = "model.safetensors"
POOLED_KIND = "pooled"
HEAD_FILE = "head.safetensors"
ENCODER_DIR = "encoder"
# A Hugging Face model folder as served: weights, config, and the tokenizer's files (WordPiece
# or SentencePiece); whichever of them a folder has.
MODEL_FILES = (
    CONFIG,
    WEIGHTS_FILE,
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "tokenizer.model",
    "added_tokens.json",
)
# Licence notices that must travel with the weights they cover (the Gemma Terms of Use ask for it).
NOTICE_FILES = ("GEMMA_NOTICE.md",)


def notices(folder: str | Path) -> list[Path]:
    """The licence notices in a checkpoint folder: they go wherever its weights go (train, release, .mar)."""
    return [Path(folder) / name for name in NOTICE_FILES if (Path(folder) / name).is_file()]


def is_pooled(folder: str | Path) -> bool:
    path = Path(folder) / CONFIG
    return path.is_file() and json.loads(path.read_text()).get("model_kind") == POOLED_KIND


def weight_files(checkpoint: str | Path, encoder: str | Path | None = None) -> list[Path]:
    """The files whose bytes are the model: model.safetensors, or for a pooled checkpoint its
    head and its encoder's weights (the encoder in `encoder`, else the checkpoint's encoder/)."""
    checkpoint = Path(checkpoint)
    if not is_pooled(checkpoint):
        return [checkpoint / WEIGHTS_FILE]
    return [checkpoint / HEAD_FILE, Path(encoder or checkpoint / ENCODER_DIR) / WEIGHTS_FILE]
