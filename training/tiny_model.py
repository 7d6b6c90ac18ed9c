"""A tiny random DistilBERT with the real tokenizer: for tests, and for measuring what the serving
stack costs when the model costs almost nothing (benchmarks/overhead.py)."""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import AutoTokenizer, DistilBertConfig, DistilBertForSequenceClassification

from training.base_model import minilm_path
from training.labels import ID2LABEL, LABEL2ID


def make_tiny_checkpoint(path: Path, seed: int = 0, positions: int = 512) -> Path:
    """A 2-layer, dim-32 DistilBERT with random weights and the real uncased WordPiece tokenizer."""
    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = DistilBertConfig(
        vocab_size=tokenizer.vocab_size,
        dim=32,
        n_layers=2,
        n_heads=2,
        hidden_dim=64,
        max_position_embeddings=positions,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )
    DistilBertForSequenceClassification(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def make_tiny_pooled_checkpoint(path: Path, seed: int = 0, prompt: str = "task: sentiment | query: ") -> Path:
    """A pooled-head checkpoint (the `sentiment-accurate` layout) over a tiny random encoder:
    2 layers, dim 32, the last and the first layer pooled, a hidden head layer."""
    from safetensors.torch import save_file
    from transformers import DistilBertModel

    from review_sentiment.core.pooled import ENCODER_DIR, HEAD_FILE, PooledConfig, make_head

    torch.manual_seed(seed)
    encoder = path / ENCODER_DIR
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = DistilBertConfig(vocab_size=tokenizer.vocab_size, dim=32, n_layers=2, n_heads=2, hidden_dim=64)
    DistilBertModel(config).save_pretrained(encoder)
    tokenizer.save_pretrained(encoder)
    head = make_head(64, 8)
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(path / HEAD_FILE))
    PooledConfig(prompt=prompt, extra_layers=[1], head_hidden=8, features=64, calibration_temperature=1.5).write(path)
    return path
