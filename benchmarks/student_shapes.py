"""What a wider or deeper DistilBERT-shaped student would cost to serve (issue #22 item 7): the
forward pass of each shape, in this process, at a worker's torch threads, beside the served one.

Speed does not depend on the weights, so each shape is built with random ones; the texts go
through the served model's tokenizer at its max_length. The shapes are the ones an offline
start exists for: the served all-MiniLM-L6-v2 shape (6 x 384), the same encoder with its layers
repeated (12 x 384), and all-mpnet-base-v2's size mapped onto DistilBERT (12 x 768; its
vocabulary, 30,527 tokens, changes the embedding table only). For reference, the teacher's
encoder (EmbeddingGemma-300M, the accurate model's) with its prompt and tokenizer, when `make
teacher` has fetched it. `make bench BENCH_ARGS=--shapes` (about 3 minutes).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

from benchmarks.report import shown
from benchmarks.reviews import SEED_LENGTH, reviews
from review_sentiment.client.load_driver import Window
from review_sentiment.markdown import markdown_table
from review_sentiment.progress import log

# name: (layers, dim, feed-forward dim, vocabulary; None: the served model's)
SHAPES = {
    "served: 6 x 384 (all-MiniLM-L6-v2)": (6, 384, 1536, None),
    "deeper: 12 x 384 (its layers repeated)": (12, 384, 1536, None),
    "wider: 12 x 768 (all-mpnet-base-v2's size)": (12, 768, 3072, 30527),
}
CELLS = ((100, 1), (100, 16), (SEED_LENGTH, 1), (SEED_LENGTH, 16))  # (characters, batch)


def _student(served: Path, tokenizer, shape: tuple[int, int, int, int | None]):
    """(model, tokenizer, prompt) of a DistilBERT of `shape` with random weights, the served
    model's config otherwise."""
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    layers, dim, hidden, vocabulary = shape
    config = DistilBertConfig.from_pretrained(served)
    config.n_layers, config.dim, config.hidden_dim = layers, dim, hidden
    config.vocab_size = vocabulary or config.vocab_size
    return DistilBertForSequenceClassification(config).eval(), tokenizer, ""


TEACHER = "teacher: EmbeddingGemma-300M, 24 x 768 (the accurate model)"


def _teacher():
    """(model, tokenizer, prompt) of the teacher's encoder with random weights, or None when
    its folder (config and tokenizer) was never fetched."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    from training.teacher.features import PROMPT
    from training.teacher.weights import encoder_dir

    folder = encoder_dir()
    if not (folder / "config.json").is_file():
        return None
    model = AutoModel.from_config(AutoConfig.from_pretrained(folder)).eval()
    return model, AutoTokenizer.from_pretrained(folder), PROMPT


def _ms_per_review(model, batch: dict, window: Window) -> float:
    """Median milliseconds per review over the window's measured seconds (after its warm-up)."""
    import torch

    times: list[float] = []
    size = batch["input_ids"].shape[0]
    with torch.inference_mode():
        for phase, seconds in (("warm-up", window.warmup_s), ("measure", window.duration_s)):
            end = time.monotonic() + seconds
            while time.monotonic() < end or (phase == "measure" and len(times) < 3):
                start = time.perf_counter()
                model(**batch)
                if phase == "measure":
                    times.append((time.perf_counter() - start) * 1000 / size)
    return round(sorted(times)[len(times) // 2], 2)


def measure(
    checkpoint: Path,
    window: Window,
    threads: int = 1,
    max_length: int = 256,
    shapes: dict[str, tuple[int, int, int, int | None]] = SHAPES,
    cells: tuple[tuple[int, int], ...] = CELLS,
    teacher: bool = True,
) -> dict:
    """Each shape's ms per review per (characters, batch) cell; the first shape is the served
    one, the reference of the ratios; the teacher's encoder last when `teacher`."""
    import torch
    from transformers import AutoTokenizer

    torch.set_num_threads(threads)
    served = AutoTokenizer.from_pretrained(checkpoint)
    builds = {name: partial(_student, checkpoint, served, shape) for name, shape in shapes.items()}
    if teacher:
        builds[TEACHER] = _teacher
    rows = {}
    for name, build in builds.items():  # one model in memory at a time
        built = build()
        if built is None:
            log(f"{name}: not fetched (make teacher), left out")
            continue
        model, tokenizer, prompt = built
        ms: dict[str, float] = {}
        for length, size in cells:
            texts = [prompt + text for text in (reviews(length) * size)[:size]]
            batch = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
            ms[f"{length}x{size}"] = _ms_per_review(model, dict(batch), window)
            log(f"{name}: {length} chars, batch {size}: {ms[f'{length}x{size}']} ms per review")
        rows[name] = {"parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 1), "ms": ms}
        del model, built  # before the next is built
    return {"checkpoint": shown(checkpoint), "threads": threads, "max_length": max_length, "shapes": rows}


def markdown(figures: dict) -> str:
    shapes = figures["shapes"]
    served = next(iter(shapes.values()))["ms"]
    header = ["shape", "parameters"] + [f"{c.split('x')[0]} chars, batch {c.split('x')[1]}" for c in served]
    rows = [
        [name, f"{row['parameters_m']}M"] + [f"{ms} ms ({ms / served[cell]:.1f}x)" for cell, ms in row["ms"].items()]
        for name, row in shapes.items()
    ]
    return (
        f"Milliseconds per review (median), a forward pass in this process at {figures['threads']} torch "
        f"thread(s) (a worker's), fp32, max_length {figures['max_length']}; in parentheses, the cost "
        f"against the served shape.\n\n{markdown_table(header, rows)}\n"
    )
