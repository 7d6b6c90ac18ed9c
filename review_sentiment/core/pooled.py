"""A sentence encoder with a classification head: `sentiment-accurate` (EmbeddingGemma-300M).

The encoder's token states are mean-pooled (the last layer's, plus any `extra_layers`), and a
small head maps them to the two labels. The folder holds `config.json` (kind "pooled", the
prompt, pooling layers, head shape, labels, calibration temperature), `head.safetensors`, and
the encoder itself in `encoder/` (weights and tokenizer). `PooledClassifier` answers like a
`...ForSequenceClassification` model (`.logits`, `.config`, input embeddings), so the same core,
explainer and handler serve it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import load_file

from review_sentiment.core.layout import CONFIG, ENCODER_DIR, HEAD_FILE
from review_sentiment.core.layout import POOLED_KIND as KIND


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The mean of the real tokens' states (padding left out), as sentence-transformers pools."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


@dataclass
class PooledConfig:
    prompt: str  # prepended to every text, e.g. "task: classification | query: "
    extra_layers: list[int]  # hidden_states indices pooled beside the last layer
    head_hidden: int  # 0: a linear head; else one hidden layer of this width (GELU)
    features: int  # pooled width: hidden size x (1 + len(extra_layers))
    id2label: dict[int, str] = field(default_factory=lambda: {0: "negative", 1: "positive"})
    calibration_temperature: float = 1.0
    encoder: dict = field(default_factory=dict)  # what the encoder is: name, sha256, licence

    @classmethod
    def read(cls, folder: Path) -> PooledConfig:
        raw = json.loads((Path(folder) / CONFIG).read_text())
        if raw.get("model_kind") != KIND:
            raise ValueError(f"{folder}: not a pooled-head checkpoint")
        raw.pop("model_kind")
        raw["id2label"] = {int(k): v for k, v in raw["id2label"].items()}
        return cls(**raw)

    def write(self, folder: Path) -> None:
        data = {"model_kind": KIND} | self.__dict__ | {"id2label": {str(k): v for k, v in self.id2label.items()}}
        (Path(folder) / CONFIG).write_text(json.dumps(data, indent=2) + "\n")


def text_prompt(model: torch.nn.Module) -> str:
    """The task prompt a model's texts get (\"\" for the fine-tuned DistilBERT)."""
    config = getattr(model, "pooled_config", None)
    return config.prompt if config is not None else ""


def make_head(features: int, hidden: int, dropout: float = 0.0) -> torch.nn.Sequential:
    if hidden == 0:
        return torch.nn.Sequential(torch.nn.Dropout(dropout), torch.nn.Linear(features, 2))
    return torch.nn.Sequential(
        torch.nn.Dropout(dropout), torch.nn.Linear(features, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 2)
    )


def pooled_features(encoder: torch.nn.Module, extra_layers: list[int], **inputs) -> torch.Tensor:
    """Mean-pooled states of the last layer and `extra_layers`, side by side."""
    out = encoder(**inputs, output_hidden_states=bool(extra_layers))
    mask = inputs["attention_mask"]
    pooled = [mean_pool(out.last_hidden_state, mask)]
    pooled += [mean_pool(out.hidden_states[i], mask) for i in extra_layers]
    return torch.cat(pooled, dim=-1)


class PooledClassifier(torch.nn.Module):
    def __init__(self, encoder: torch.nn.Module, head: torch.nn.Module, config: PooledConfig):
        super().__init__()
        self.encoder, self.head, self.pooled_config = encoder, head, config
        # What the core and the explainer read off a Hugging Face classifier's config.
        self.config = SimpleNamespace(
            id2label=config.id2label,
            num_labels=len(config.id2label),
            calibration_temperature=config.calibration_temperature,
            max_position_embeddings=encoder.config.max_position_embeddings,
        )

    def get_input_embeddings(self) -> torch.nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None) -> SimpleNamespace:
        inputs = {"attention_mask": attention_mask}
        inputs |= {"inputs_embeds": inputs_embeds} if inputs_embeds is not None else {"input_ids": input_ids}
        features = pooled_features(self.encoder, self.pooled_config.extra_layers, **inputs)
        return SimpleNamespace(logits=self.head(features.to(self.head[-1].weight.dtype)))

    @classmethod
    def load(cls, folder: str | Path, dtype: torch.dtype = torch.float32) -> PooledClassifier:
        from transformers import AutoModel

        folder = Path(folder)
        config = PooledConfig.read(folder)
        encoder = AutoModel.from_pretrained(folder / ENCODER_DIR, dtype=dtype)
        head = make_head(config.features, config.head_hidden)
        head.load_state_dict(load_file(folder / HEAD_FILE))
        return cls(encoder, head.to(dtype), config).eval()
