"""The teacher's pooled features of texts, computed once and cached by content hash.

A text's key is the sha256 of (encoder checksum, max_length, prompt, text): the cache holds
keys and vectors, never text. Features go to append-only shards as they are computed, so a
run that stops resumes where the last shard ended; progress (texts/s, what is left) goes to
the log.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from review_sentiment.core.encoding import pad_batch, token_ids
from review_sentiment.core.machine import cpu_has_bf16
from review_sentiment.core.pooled import pooled_features
from review_sentiment.progress import log
from training import sources
from training.teacher import weights

PROMPT = "task: classification | query: "  # EmbeddingGemma's classification prompt
MAX_LENGTH = 256  # tokens, prompt and special tokens included: as the core serves
EXTRA_LAYERS = [12]  # a middle layer pooled beside the last one
BATCH_TOKENS = 4096  # padded tokens per forward pass
SHARD_TEXTS = 512  # texts per shard file


KEY_BYTES = 16  # numpy's "S16" drops a key's trailing zero bytes when read back: padded again on load


def text_key(text: str, max_length: int = MAX_LENGTH) -> bytes:
    return hashlib.sha256(f"{weights.MODEL_SHA256}|{max_length}|{PROMPT}|{text}".encode()).digest()[:KEY_BYTES]


class FeatureCache:
    def __init__(self, folder: Path | None = None):
        self.folder = folder or sources.cache_dir() / "teacher-features"
        self.index: dict[bytes, tuple[int, int]] = {}  # key -> (shard, row)
        self.shards: dict[int, np.ndarray] = {}
        self.folder.mkdir(parents=True, exist_ok=True)
        for path in sorted(self.folder.glob("shard-*.npz")):
            shard = int(path.stem.split("-")[1])
            with np.load(path) as data:
                self.shards[shard] = data["vectors"]
                for row, key in enumerate(data["keys"]):
                    self.index[bytes(key).ljust(KEY_BYTES, b"\0")] = (shard, row)

    def __contains__(self, key: bytes) -> bool:
        return key in self.index

    def get(self, keys: Sequence[bytes]) -> np.ndarray:
        return np.stack([self.shards[s][r] for s, r in (self.index[k] for k in keys)]).astype(np.float32)

    def add(self, keys: list[bytes], vectors: np.ndarray) -> None:
        shard = max(self.shards, default=-1) + 1
        path = self.folder / f"shard-{shard:05d}.npz"
        tmp = path.with_suffix(".tmp.npz")
        vectors = vectors.astype(np.float16)
        np.savez(tmp, keys=np.frombuffer(b"".join(keys), dtype="S16"), vectors=vectors)
        tmp.rename(path)  # a shard is whole or absent
        self.shards[shard] = vectors
        for row, key in enumerate(keys):
            self.index[key] = (shard, row)


def teacher_dtype() -> torch.dtype:
    """bf16 where the CPU computes it natively (1.6x fp32 here; pooled features agree with fp32's
    to a cosine of 0.9999), as the core's `auto` serves; fp32 elsewhere, fp16 on a GPU."""
    if torch.cuda.is_available():
        return torch.float16
    return torch.bfloat16 if cpu_has_bf16() else torch.float32


class TeacherEncoder:
    def __init__(self, max_length: int = MAX_LENGTH):
        from transformers import AutoModel, AutoTokenizer

        folder = weights.ensure_encoder()
        self.max_length = max_length
        self.tokenizer = AutoTokenizer.from_pretrained(folder)
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModel.from_pretrained(folder, dtype=teacher_dtype()).eval().to(self.device)

    @torch.inference_mode()
    def __call__(self, ids: list[list[int]]) -> np.ndarray:
        batch = {k: v.to(self.device) for k, v in pad_batch(ids, self.tokenizer.pad_token_id).items()}
        return pooled_features(self.model, EXTRA_LAYERS, **batch).float().cpu().numpy()

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        return token_ids(self.tokenizer, texts, self.max_length, prompt=PROMPT)


def batches(lengths: Sequence[int], budget: int = BATCH_TOKENS) -> list[list[int]]:
    """Indices sorted by length, cut so that batch size x longest stays within `budget`."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    out: list[list[int]] = []
    for i in order:
        if out and (len(out[-1]) + 1) * lengths[i] <= budget:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def features(texts: Sequence[str], cache: FeatureCache | None = None, what: str = "texts") -> np.ndarray:
    """The teacher's features of `texts` (n x features), computing only what the cache lacks."""
    cache = cache or FeatureCache()
    keys = [text_key(t) for t in texts]
    missing = sorted({k: i for i, k in enumerate(keys) if k not in cache}.values())
    if missing:
        encoder = TeacherEncoder()
        ids = encoder.token_ids([texts[i] for i in missing])
        todo = batches([len(x) for x in ids])
        log(f"teacher features: {len(missing)} of {len(texts)} {what} to embed in {len(todo)} batches")
        started, done, pending_keys, pending = time.time(), 0, [], []
        for batch in todo:
            pending.append(encoder([ids[i] for i in batch]))
            pending_keys += [keys[missing[i]] for i in batch]
            done += len(batch)
            if len(pending_keys) >= SHARD_TEXTS or done == len(missing):
                cache.add(pending_keys, np.concatenate(pending))
                pending_keys, pending = [], []
                rate = done / (time.time() - started)
                left = (len(missing) - done) / rate / 60
                log(f"teacher features: {done}/{len(missing)} {what}, {rate:.1f}/s, ~{left:.0f} min left")
    return cache.get(keys)
