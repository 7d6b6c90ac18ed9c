"""Batch tokenization with an explicit long-review policy, shared by training and serving.

Long reviews keep their head *and* their tail: the verdict of a review is often in its last
sentences ("...but I returned it"), and Sun et al. (2019, "How to Fine-Tune BERT for Text
Classification") found head+tail truncation beats head-only on IMDB. By default a quarter of
the token budget goes to the head and the rest to the tail.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import PreTrainedTokenizerBase


def head_tail(ids: Sequence[int], budget: int, head_fraction: float) -> list[int]:
    """Keep at most `budget` ids: the first `head_fraction` of the budget and the tail."""
    if len(ids) <= budget:
        return list(ids)
    head = int(budget * head_fraction)
    tail = budget - head
    return list(ids[:head]) + (list(ids[-tail:]) if tail else [])


def special_tokens(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The ids a tokenizer puts before and after one sequence ([CLS] / [SEP] for BERT)."""
    plain = tokenizer("review", add_special_tokens=False)["input_ids"]
    full = tokenizer("review", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return full[:start], full[start + len(plain) :]
    raise ValueError("cannot locate the text between the tokenizer's special tokens")


def text_budget(
    tokenizer: PreTrainedTokenizerBase, max_length: int, prompt: str = ""
) -> tuple[list[int], list[int], int]:
    """(prefix ids, suffix ids, text tokens that fit in `max_length` between them). A `prompt`
    (an instruction-tuned encoder's task prefix, e.g. EmbeddingGemma's) belongs to the prefix."""
    prefix, suffix = special_tokens(tokenizer)
    if prompt:
        prefix = prefix + tokenizer(prompt, add_special_tokens=False)["input_ids"]
    budget = max_length - len(prefix) - len(suffix)
    if budget <= 0:
        raise ValueError(f"max_length {max_length} leaves no room for text tokens")
    return prefix, suffix, budget


def token_ids(
    tokenizer: PreTrainedTokenizerBase,
    texts: Sequence[str],
    max_length: int,
    head_fraction: float = 0.25,
    prompt: str = "",
) -> list[list[int]]:
    """Tokenize a whole batch at once; each result has special tokens (and `prompt`) and <=
    max_length ids."""
    prefix, suffix, budget = text_budget(tokenizer, max_length, prompt)
    # verbose=False: over-long inputs are expected here, they are truncated just below.
    raw = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False)["input_ids"]
    return [prefix + head_tail(ids, budget, head_fraction) + suffix for ids in raw]


def pad_batch(sequences: Sequence[Sequence[int]], pad_id: int, multiple: int = 1) -> dict[str, torch.Tensor]:
    """Dynamic padding: pad to the longest sequence of this batch (rounded up to `multiple`), not
    to max_length. Rounding bounds the number of distinct shapes a server sees, and with it the
    memory that shape-keyed kernel caches and the allocator keep."""
    longest = max(len(seq) for seq in sequences)
    longest = -(-longest // multiple) * multiple
    input_ids = torch.full((len(sequences), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(sequences), longest), dtype=torch.long)
    for row, seq in enumerate(sequences):
        input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        attention_mask[row, : len(seq)] = 1
    return {"input_ids": input_ids, "attention_mask": attention_mask}
