"""The inference core: validate -> tokenize (whole batch) -> model -> softmax -> results.

`SentimentClassifier` is what the TorchServe handler, the benchmarks and the tests call; it
knows nothing of TorchServe.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from review_sentiment.core.calibration import calibration_temperature
from review_sentiment.core.encoding import pad_batch, token_ids
from review_sentiment.core.errors import ExplanationsOff, RequestError
from review_sentiment.core.explain import Explanation, WordExplainer
from review_sentiment.core.layout import ENCODER_DIR, is_pooled
from review_sentiment.core.machine import cpu_has_bf16
from review_sentiment.core.pooled import PooledClassifier, text_prompt
from review_sentiment.core.prediction import Prediction
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.core.validation import review_text

WARMUP_TEXTS = ("A short warm-up review.", "warm up " * 200)


@dataclass(frozen=True)
class BatchStats:
    """What one model call cost; the handler turns these into TorchServe metrics."""

    size: int
    tokens: int  # real tokens, special tokens included
    padded_tokens: int  # batch size x longest sequence: what the model computed
    tokenize_ms: float
    inference_ms: float
    explained: int = 0  # requests of this batch that asked for an explanation
    explain_ms: float = 0.0


Outcome = Prediction | Explanation | RequestError


def resolve_device(gpu_id: int | str | None) -> torch.device:
    """CUDA device `gpu_id` when CUDA is there and TorchServe assigned one, else CPU."""
    if gpu_id is not None and torch.cuda.is_available():
        return torch.device(f"cuda:{gpu_id}")
    return torch.device("cpu")


def default_threads(workers: int) -> int:
    """Intra-op threads per worker so that workers x threads <= cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))


def cpu_precision(setting: str) -> str:
    """`auto` is bf16 where the CPU has native bf16, else fp32 (speed and accuracy per precision:
    results/benchmarks/)."""
    if setting == "auto":
        return "bf16" if cpu_has_bf16() else "fp32"
    return setting


def served_precision(device: torch.device, settings: InferenceSettings) -> str:
    """The precision the model serves in on `device`: fp32, fp16, bf16 or int8."""
    return settings.gpu_precision if device.type == "cuda" else cpu_precision(settings.cpu_precision)


def casts_in_place(device: torch.device, settings: InferenceSettings) -> bool:
    """Whether prepare_model changes the fp32 model it is given (a cast); int8 builds a separate
    ONNX Runtime model and leaves it as it was."""
    return served_precision(device, settings) not in ("fp32", "int8")


def prepare_model(model: torch.nn.Module, device: torch.device, settings: InferenceSettings):
    """Cast or quantize for the device: fp16 on GPU; fp32, bf16, or int8 through ONNX Runtime
    (review_sentiment/core/onnx_int8.py, on the torch threads already set) on CPU."""
    model = model.eval()
    precision = served_precision(device, settings)
    if device.type == "cuda":
        dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
        return model.to(device=device, dtype=dtype)
    model = model.to(device=device, dtype=torch.float32)
    if precision == "bf16":
        return model.to(torch.bfloat16)
    if precision == "int8":
        if isinstance(model, PooledClassifier):
            raise ValueError("cpu_precision int8 is available for the DistilBERT model only; use fp32 or auto")
        from review_sentiment.core.onnx_int8 import load_int8  # onnxruntime only where int8 is served

        return load_int8(model, torch.get_num_threads())
    return model


def load_model(checkpoint: str | Path):
    """(tokenizer, fp32 model) of a fine-tuned ...ForSequenceClassification checkpoint or of a
    pooled-head one (review_sentiment/core/pooled.py). Loaded in fp32 (a checkpoint may be
    stored in fp16), then cast for the device by prepare_model."""
    if is_pooled(checkpoint):
        return AutoTokenizer.from_pretrained(Path(checkpoint) / ENCODER_DIR), PooledClassifier.load(checkpoint)
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, dtype=torch.float32)
    return AutoTokenizer.from_pretrained(checkpoint), model


def make_explainer(
    model: torch.nn.Module, tokenizer, settings: InferenceSettings, device: torch.device
) -> WordExplainer | None:
    """The explainer over an fp32 `model` (loaded in fp32, not yet prepared for serving); None
    when explanations are off. Shares the weights unless prepare_model casts them (bf16, fp16):
    an fp32 server computes with them, an int8 one has its own ONNX Runtime copy."""
    if not settings.explain:
        return None
    if casts_in_place(device, settings):
        model = copy.deepcopy(model)
    return WordExplainer(model.to(device=device, dtype=torch.float32), tokenizer, settings)


class SentimentClassifier:
    def __init__(
        self,
        model,
        tokenizer,
        settings: InferenceSettings,
        device: torch.device,
        explainer: WordExplainer | None = None,
    ):
        self.model, self.tokenizer, self.settings, self.device = model, tokenizer, settings, device
        self.explainer = explainer
        self.labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
        self.temperature = calibration_temperature(model.config)
        self.prompt = text_prompt(model)

    @classmethod
    def load(
        cls,
        checkpoint: str | Path,
        settings: InferenceSettings | None = None,
        device: torch.device | str = "cpu",
        workers: int = 1,
    ) -> SentimentClassifier:
        settings = settings or InferenceSettings()
        device = torch.device(device)
        if device.type == "cpu":
            torch.set_num_threads(settings.torch_threads or default_threads(workers))
        tokenizer, model = load_model(checkpoint)
        settings.check_positions(model.config.max_position_embeddings)
        explainer = make_explainer(model, tokenizer, settings, device)
        classifier = cls(prepare_model(model, device, settings), tokenizer, settings, device, explainer)
        if settings.warmup:
            classifier.predict_texts(list(WARMUP_TEXTS))
            if explainer is not None:
                classifier.explain(WARMUP_TEXTS[:1])
        return classifier

    def validate(
        self, payloads: Sequence[object], content_types: Sequence[str | None] | None = None
    ) -> list[str | RequestError]:
        types = content_types or [None] * len(payloads)
        out: list[str | RequestError] = []
        for payload, content_type in zip(payloads, types, strict=True):
            try:
                out.append(review_text(payload, self.settings.max_chars, content_type))
            except RequestError as err:
                out.append(err)
        return out

    @torch.inference_mode()
    def predict_texts(self, texts: Sequence[str]) -> tuple[list[Prediction], BatchStats]:
        """Classify valid texts in one model call; results in input order."""
        start = time.perf_counter()
        ids = token_ids(self.tokenizer, texts, self.settings.max_length, self.settings.head_fraction, self.prompt)
        padded = pad_batch(ids, self.tokenizer.pad_token_id, self.settings.pad_multiple)
        batch = {k: v.to(self.device) for k, v in padded.items()}
        tokenized = time.perf_counter()
        logits = self.model(**batch).logits
        probs = torch.softmax(logits.float() / self.temperature, dim=-1).cpu().tolist()
        done = time.perf_counter()
        predictions = []
        for row in probs:
            best = max(range(len(row)), key=row.__getitem__)
            predictions.append(Prediction(self.labels[best], row[best], dict(zip(self.labels, row, strict=True))))
        stats = BatchStats(
            size=len(texts),
            tokens=sum(len(x) for x in ids),
            padded_tokens=int(batch["input_ids"].numel()),
            tokenize_ms=(tokenized - start) * 1000,
            inference_ms=(done - tokenized) * 1000,
        )
        return predictions, stats

    def classify(
        self,
        payloads: Sequence[object],
        content_types: Sequence[str | None] | None = None,
        explain: Sequence[bool] | None = None,
    ) -> tuple[list[Outcome], BatchStats | None]:
        """One outcome per payload, in order: a Prediction, an Explanation where `explain` asks
        for one, or the RequestError of that payload. Predictions and explanations of a batch
        share one model call; the explanations' labels are the served model's."""
        checked: list[str | RequestError] = self.validate(payloads, content_types)
        wanted = list(explain or [False] * len(payloads))
        if self.explainer is None:
            off = ExplanationsOff("explanations are switched off on this server (setting explain)")
            checked = [off if wanted[i] and isinstance(item, str) else item for i, item in enumerate(checked)]
        valid = [i for i, item in enumerate(checked) if isinstance(item, str)]
        if not valid:
            return list(checked), None  # type: ignore[arg-type]
        predictions, stats = self.predict_texts([checked[i] for i in valid])  # type: ignore[misc]
        by_index: dict[int, Outcome] = dict(zip(valid, predictions, strict=True))
        to_explain = [i for i in valid if wanted[i]]
        if to_explain:
            run = self.explainer.explain(  # type: ignore[union-attr]
                [checked[i] for i in to_explain], [by_index[i] for i in to_explain], self.labels
            )
            by_index.update(zip(to_explain, run.outcomes, strict=True))
            stats = replace(stats, explained=len(to_explain), explain_ms=run.ms)
        return [by_index.get(i, item) for i, item in enumerate(checked)], stats  # type: ignore[misc]

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """Plain-text API for scripts: raises the first RequestError."""
        return _raise_first_error(self.classify(list(texts))[0])  # type: ignore[return-value]

    def explain(self, texts: Sequence[str]) -> list[Explanation]:
        """Word attributions for the predicted labels of `texts`; raises the first RequestError."""
        outcomes, _ = self.classify(list(texts), explain=[True] * len(texts))
        return _raise_first_error(outcomes)  # type: ignore[return-value]


def _raise_first_error(outcomes: list[Outcome]) -> list[Outcome]:
    for outcome in outcomes:
        if isinstance(outcome, RequestError):
            raise outcome
    return outcomes
