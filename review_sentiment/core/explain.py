"""Word attributions for a prediction: Integrated Gradients over the input embeddings.

Integrated Gradients (Sundararajan et al. 2017) integrates the gradient of the model's output
along a straight path from a baseline to the input. Here the output is the log-odds of the
predicted label, log(p / (1 - p)): unlike the probability it does not saturate near 0 or 1,
and unlike a single logit it cannot be raised by a word that raises every logit alike. The
baseline replaces every text token's embedding by [PAD]'s and keeps [CLS] / [SEP], so the
special tokens get no attribution. Token scores add up to f(input) - f(baseline)
("completeness"); what they miss is reported as `convergence_delta`.

Written here instead of using Captum: a few dozen lines, no dependency, and the interpolation
points of *all* the reviews of a batch go through the model together, in chunks of bounded
size. The integral uses Gauss-Legendre nodes (Captum's default too). The path has sharp turns
(the log-odds of a review can swing by 6 within a tenth of the path), so no rule converges
fast; docs/api.md (Explanations) gives the measured |delta| at 32 and 64 steps.

The model given here must be fp32 (or fp64): bf16 gradients are too coarse (8-bit mantissa)
and the int8 ONNX Runtime graph has no backward, so the classifier keeps the fp32 torch model
for this when it serves in another precision.
"""

from __future__ import annotations

import bisect
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from transformers import PreTrainedTokenizerBase

from review_sentiment.core.calibration import calibration_temperature
from review_sentiment.core.encoding import head_tail, text_budget
from review_sentiment.core.errors import ExplainBusy, RequestError
from review_sentiment.core.pooled import text_prompt
from review_sentiment.core.prediction import Prediction
from review_sentiment.core.settings import InferenceSettings

METHOD = "integrated_gradients"
WORD = re.compile(r"\S+")  # a word: what the UI highlights, punctuation attached ("great!")

Span = tuple[int, int]


@dataclass(frozen=True)
class WordAttribution:
    word: str  # == text[start:end] of the original review
    start: int  # character offsets into the original review
    end: int
    score: float  # contribution to the predicted label's log-odds; > 0 supports the label

    def to_dict(self) -> dict[str, object]:
        return {"word": self.word, "start": self.start, "end": self.end, "score": self.score}


@dataclass(frozen=True)
class Explanation:
    prediction: Prediction
    attributions: list[WordAttribution]  # words in text order; words cut by truncation are left out
    steps: int
    log_odds: float  # f(input): the label's log-odds by the fp32 explainer model
    baseline_log_odds: float  # f(baseline): every text token replaced by [PAD]
    convergence_delta: float  # sum of scores - (log_odds - baseline_log_odds): the integration error
    omitted: Span | None  # characters the model never saw (head + tail truncation), if any

    def to_dict(self) -> dict[str, object]:
        return {
            **self.prediction.to_dict(),
            "attributions": [a.to_dict() for a in self.attributions],
            "method": METHOD,
            "steps": self.steps,
            "log_odds": self.log_odds,
            "baseline_log_odds": self.baseline_log_odds,
            "convergence_delta": self.convergence_delta,
            "truncated": self.omitted is not None,
            "omitted": list(self.omitted) if self.omitted else None,
        }


@dataclass(frozen=True)
class EncodedReview:
    ids: list[int]  # exactly what the classifier feeds the model (encoding.token_ids)
    spans: list[Span | None]  # character span of each id in the original text; None: special token
    omitted: Span | None


def encode_with_spans(
    tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], max_length: int, head_fraction: float, prompt: str = ""
) -> list[EncodedReview]:
    """Token ids with the serving path's head + tail truncation, and each token's character span
    (the fast tokenizer's offset mapping) into the original text. A prompt's ids belong to the
    prefix: like special tokens, they keep their embedding in the baseline and get no score."""
    prefix, suffix, budget = text_budget(tokenizer, max_length, prompt)
    raw = tokenizer(list(texts), add_special_tokens=False, truncation=False, verbose=False, return_offsets_mapping=True)
    reviews = []
    for ids, offsets in zip(raw["input_ids"], raw["offset_mapping"], strict=True):
        kept = head_tail(range(len(ids)), budget, head_fraction)
        dropped = sorted(set(range(len(ids))) - set(kept))
        omitted = (offsets[dropped[0]][0], offsets[dropped[-1]][1]) if dropped else None
        reviews.append(
            EncodedReview(
                ids=prefix + [ids[i] for i in kept] + suffix,
                spans=[None] * len(prefix) + [tuple(offsets[i]) for i in kept] + [None] * len(suffix),
                omitted=omitted,
            )
        )
    return reviews


def gauss_legendre(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """n nodes in (0, 1) and weights summing to 1 (Golub-Welsch: eigen-decomposition of the
    Jacobi matrix of the Legendre polynomials), in float64."""
    k = torch.arange(1, n, dtype=torch.float64)
    off_diagonal = k / torch.sqrt(4 * k**2 - 1)
    nodes, vectors = torch.linalg.eigh(torch.diag(off_diagonal, 1) + torch.diag(off_diagonal, -1))
    return (nodes + 1) / 2, vectors[0] ** 2


def log_odds(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """log p_t / (1 - p_t) per row: the target logit minus the log-sum-exp of the others."""
    chosen = logits.gather(1, target[:, None]).squeeze(1)
    others = logits.scatter(1, target[:, None], float("-inf"))
    return chosen - torch.logsumexp(others, dim=1)


def word_attributions(text: str, review: EncodedReview, token_scores: Sequence[float]) -> list[WordAttribution]:
    """Sum WordPiece scores into whitespace-separated words of the original text."""
    words = [(m.start(), m.end()) for m in WORD.finditer(text)]
    starts = [start for start, _ in words]
    totals: dict[int, float] = {}
    for span, score in zip(review.spans, token_scores, strict=True):
        if span is not None:
            index = bisect.bisect_right(starts, span[0]) - 1
            totals[index] = totals.get(index, 0.0) + score
    return [WordAttribution(text[s:e], s, e, totals[i]) for i, (s, e) in enumerate(words) if i in totals]


@dataclass(frozen=True)
class TokenAttributions:
    scores: list[float]  # one per id of the EncodedReview; 0 for special tokens
    output: float  # f(input)
    baseline_output: float  # f(baseline)

    @property
    def delta(self) -> float:
        return sum(self.scores) - (self.output - self.baseline_output)


class IntegratedGradients:
    def __init__(self, model: torch.nn.Module, pad_id: int, steps: int, chunk_tokens: int):
        self.model = model.eval().requires_grad_(False)  # gradients w.r.t. the inputs only
        self.pad_id, self.steps, self.chunk_tokens = pad_id, steps, chunk_tokens
        # The calibrated log-odds are what is explained: they match the served probabilities.
        self.temperature = calibration_temperature(model.config)

    def attribute(self, reviews: Sequence[EncodedReview], targets: Sequence[int]) -> list[TokenAttributions]:
        embed = self.model.get_input_embeddings()
        nodes, weights = gauss_legendre(self.steps)
        # Besides the nodes, each review runs at alpha 0 and 1 with weight 0: f(baseline) and
        # f(input), for the completeness delta, in the same model calls.
        alphas = torch.cat([nodes, torch.tensor([0.0, 1.0], dtype=torch.float64)]).tolist()
        weights = torch.cat([weights, torch.zeros(2, dtype=torch.float64)]).tolist()
        device = embed.weight.device
        with torch.no_grad():
            # Through the embedding module, not its weight: Gemma's scales its output by sqrt(width).
            pad = embed(torch.tensor([self.pad_id], device=device))[0]
            inputs = [embed(torch.tensor(r.ids, device=device)) for r in reviews]
            is_text = [torch.tensor([s is not None for s in r.spans], device=device)[:, None] for r in reviews]
            baselines = [torch.where(t, pad, x) for t, x in zip(is_text, inputs, strict=True)]
        gradients = [torch.zeros_like(x) for x in inputs]
        outputs = [[0.0] * len(alphas) for _ in reviews]
        longest_first = sorted(range(len(reviews)), key=lambda i: -len(reviews[i].ids))
        rows = [(i, a) for i in longest_first for a in range(len(alphas))]
        for chunk in self._chunks(rows, [len(r.ids) for r in reviews]):
            scaled = [baselines[i] + alphas[a] * (inputs[i] - baselines[i]) for i, a in chunk]
            batch = torch.nn.utils.rnn.pad_sequence(scaled, batch_first=True).requires_grad_(True)
            mask = torch.nn.utils.rnn.pad_sequence([torch.ones(len(x), dtype=torch.long) for x in scaled], True)
            target = torch.tensor([targets[i] for i, _ in chunk], device=batch.device)
            with torch.enable_grad():
                logits = self.model(inputs_embeds=batch, attention_mask=mask.to(batch.device)).logits
                value = log_odds(logits / self.temperature, target)
                (grad,) = torch.autograd.grad(value.sum(), batch)
            values = value.detach().tolist()
            for row, (i, a) in enumerate(chunk):
                gradients[i] += weights[a] * grad[row, : len(inputs[i])]
                outputs[i][a] = values[row]
        results = []
        for i in range(len(reviews)):
            scores = ((inputs[i] - baselines[i]) * gradients[i]).sum(-1)
            results.append(TokenAttributions(scores.tolist(), outputs[i][-1], outputs[i][-2]))
        return results

    def _chunks(self, rows: list[tuple[int, int]], lengths: list[int]) -> list[list[tuple[int, int]]]:
        """Rows (longest review first) grouped so that rows x longest <= chunk_tokens: bounds the
        memory the backward pass keeps, whatever the batch."""
        chunks: list[list[tuple[int, int]]] = []
        for row in rows:
            if chunks and (len(chunks[-1]) + 1) * lengths[chunks[-1][0][0]] <= self.chunk_tokens:
                chunks[-1].append(row)
            else:
                chunks.append([row])
        return chunks


@dataclass(frozen=True)
class ExplainRun:
    outcomes: list[Explanation | RequestError]  # in the order of the texts
    ms: float


class WordExplainer:
    """Texts and the labels to explain in; word attributions out, in order."""

    def __init__(self, model: torch.nn.Module, tokenizer: PreTrainedTokenizerBase, settings: InferenceSettings):
        self.tokenizer, self.settings = tokenizer, settings
        self.prompt = text_prompt(model)
        self.gradients = IntegratedGradients(
            model, tokenizer.pad_token_id, settings.explain_steps, settings.explain_chunk_tokens
        )

    def explain(self, texts: Sequence[str], predictions: Sequence[Prediction], labels: Sequence[str]) -> ExplainRun:
        """Reviews go through the model in groups of about one chunk. Once a batch has spent
        explain_budget_s, its remaining reviews get ExplainBusy (503) instead: a batch past
        TorchServe's responseTimeout would get the worker killed and every request lost."""
        start = time.perf_counter()
        settings = self.settings
        reviews = encode_with_spans(self.tokenizer, texts, settings.max_length, settings.head_fraction, self.prompt)
        outcomes: list[Explanation | RequestError] = []
        for group in self._groups(reviews):
            if outcomes and time.perf_counter() - start > settings.explain_budget_s:
                busy = ExplainBusy("too many explanations at once; retry in a moment")
                outcomes += [busy] * len(group)
                continue
            targets = [labels.index(predictions[i].label) for i in group]
            tokens = self.gradients.attribute([reviews[i] for i in group], targets)
            outcomes += [
                Explanation(
                    prediction=predictions[i],
                    attributions=word_attributions(texts[i], reviews[i], t.scores),
                    steps=settings.explain_steps,
                    log_odds=t.output,
                    baseline_log_odds=t.baseline_output,
                    convergence_delta=t.delta,
                    omitted=reviews[i].omitted,
                )
                for i, t in zip(group, tokens, strict=True)
            ]
        return ExplainRun(outcomes, (time.perf_counter() - start) * 1000)

    def _groups(self, reviews: Sequence[EncodedReview]) -> list[list[int]]:
        """Consecutive reviews whose interpolated rows fill about one chunk together."""
        rows = self.settings.explain_steps + 2
        groups: list[list[int]] = []
        filled = 0
        for i, review in enumerate(reviews):
            size = rows * len(review.ids)
            if groups and filled + size <= self.settings.explain_chunk_tokens:
                groups[-1].append(i)
                filled += size
            else:
                groups.append([i])
                filled = size
        return groups
