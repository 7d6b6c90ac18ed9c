"""Inference settings: defaults, overridden by model-config.yaml's `handler:` section, then by
environment variables (`SENTIMENT_<NAME>`, e.g. SENTIMENT_MAX_LENGTH=128)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from review_sentiment.core.env import ENV_PREFIX, read_settings

CPU_PRECISIONS = ("auto", "fp32", "bf16", "int8")
GPU_PRECISIONS = ("fp16", "bf16", "fp32")
MAX_POSITIONS = 512  # DistilBERT's position embeddings; a model may have fewer (checked at load)


@dataclass(frozen=True)
class InferenceSettings:
    # Tokens per review, special tokens included; longer reviews keep head + tail. Rounded up to
    # pad_multiple it must fit the model's positions (512 for DistilBERT): a value that does not
    # is refused at start with a message saying which values fit.
    max_length: int = 256
    # Share of the token budget kept from the start of a long review; the rest is its end, where
    # the verdict often is ("...but I returned it"): head + tail beat head-only (Sun et al. 2019).
    head_fraction: float = 0.25
    # Longer texts are refused with 413 TextTooLong before tokenization (they cost time, not accuracy).
    max_chars: int = 20_000
    # Batches are padded to their longest review rounded up to this many tokens (length buckets:
    # few batch shapes, so kernel caches and the worker's memory stop growing); the sweep that
    # chose it: results/benchmarks/2026-11-26-tune.
    pad_multiple: int = 32
    # CPU weights: auto (bf16 where the CPU has native bf16: avx512_bf16 or AMX, else fp32), fp32,
    # bf16, or int8 (ONNX Runtime, int8 weights per channel, embeddings fp32; exported and quantized
    # at worker start, explanations in fp32 torch). Accuracy and speed per precision:
    # results/benchmarks/precision_accuracy.md and precision_speed.md.
    cpu_precision: str = "auto"
    # GPU weights on CUDA workers: fp16, bf16 or fp32.
    gpu_precision: str = "fp16"
    # torch intra-op threads per worker; 0 = cores // maxWorkers, so workers never oversubscribe.
    torch_threads: int = 0
    # Run a few batches at start-up so the first user request does not pay for lazy init.
    warmup: bool = True
    # Serve /explanations: word attributions by Integrated Gradients, in fp32 (a second, fp32 copy
    # of the weights when serving bf16/fp16/int8). false: no copy, explanations get 501.
    explain: bool = True
    # Integration steps (Gauss-Legendre nodes); each costs one forward + backward per review.
    explain_steps: int = 32
    # Interpolated rows x tokens per forward/backward: bounds the memory the backward pass holds
    # (linear in this; the measured peak is in docs/api.md, Explanations).
    explain_chunk_tokens: int = 4096
    # Seconds a batch may spend on explanations before its remaining ones get 503 ExplainBusy:
    # keeps the batch well inside responseTimeout (60 s), past which TorchServe kills the worker.
    explain_budget_s: float = 30.0

    def __post_init__(self) -> None:
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"cpu_precision must be one of {CPU_PRECISIONS}, got {self.cpu_precision!r}")
        if self.gpu_precision not in GPU_PRECISIONS:
            raise ValueError(f"gpu_precision must be one of {GPU_PRECISIONS}, got {self.gpu_precision!r}")
        if not 8 <= self.max_length <= 512:
            raise ValueError(f"max_length must be within 8..512, got {self.max_length}")
        if not 0.0 <= self.head_fraction <= 1.0:
            raise ValueError(f"head_fraction must be within 0..1, got {self.head_fraction}")
        if self.pad_multiple < 1:
            raise ValueError(f"pad_multiple must be >= 1, got {self.pad_multiple}")
        self.check_positions(MAX_POSITIONS)
        if self.max_chars < 1 or self.torch_threads < 0:
            raise ValueError("max_chars must be >= 1 and torch_threads >= 0")
        if self.explain_steps < 1 or self.explain_chunk_tokens < 1 or self.explain_budget_s <= 0:
            raise ValueError("explain_steps, explain_chunk_tokens and explain_budget_s must be > 0")

    @property
    def padded_length(self) -> int:
        """The longest batch a worker builds: max_length rounded up to pad_multiple."""
        return -(-self.max_length // self.pad_multiple) * self.pad_multiple

    def check_positions(self, positions: int) -> None:
        """Refuse at start what would fail every batch of long reviews: a padded length past the
        model's position embeddings (512 with pad_multiple 48 pads to 528)."""
        if self.padded_length > positions:
            fits = positions // self.pad_multiple * self.pad_multiple
            raise ValueError(
                f"max_length {self.max_length} rounded up to pad_multiple {self.pad_multiple} is "
                f"{self.padded_length} tokens, more than the model's {positions} positions: lower max_length "
                f"to {fits} or pick a pad_multiple that divides {positions}"
            )

    @classmethod
    def from_sources(
        cls, config: Mapping[str, object] | None = None, environ: Mapping[str, str] = os.environ
    ) -> InferenceSettings:
        """Defaults <- `config` (model-config.yaml `handler:`) <- SENTIMENT_* environment."""
        return read_settings(cls, ENV_PREFIX, environ, config)
