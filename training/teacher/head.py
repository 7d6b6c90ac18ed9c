"""The teacher's head: a small classifier on the encoder's cached, mean-pooled features.

Trained with AdamW on the training mix's features, the best epoch kept by validation
accuracy, then calibrated by temperature on the validation mix (as the student is). The
features' standardization is folded into the first layer, so the saved head takes the raw
pooled features: what `review_sentiment.core.pooled` computes at serving time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from review_sentiment.core.pooled import make_head
from training.train import temperature_from_logits


@dataclass(frozen=True)
class HeadSpec:
    layers: str  # "last" (the last layer's pooled states) or "last+mid" (and layer 12's)
    hidden: int  # 0: linear; else one hidden layer
    weight_decay: float
    dropout: float = 0.1
    epochs: int = 30
    lr: float = 1e-3
    batch_size: int = 256


SPECS = (
    HeadSpec("last", 0, 1e-4),
    HeadSpec("last+mid", 0, 1e-4),
    HeadSpec("last", 256, 1e-2),
    HeadSpec("last+mid", 256, 1e-2),
)
HIDDEN = 768  # EmbeddingGemma's width: the cache holds [last | layer 12], each this wide


def columns(features: np.ndarray, layers: str) -> np.ndarray:
    return features[:, :HIDDEN] if layers == "last" else features


@dataclass
class FittedHead:
    spec: HeadSpec
    head: torch.nn.Sequential  # takes raw pooled features
    validation_accuracy: float
    temperature: float = 1.0

    @torch.no_grad()
    def logits(self, features: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(columns(features, self.spec.layers)).float()
        return self.head.eval()(x).numpy()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Calibrated p(positive)."""
        return torch.softmax(torch.from_numpy(self.logits(features)) / self.temperature, -1)[:, 1].numpy()


def fit(
    spec: HeadSpec, train_x: np.ndarray, train_y: np.ndarray, val_x: np.ndarray, val_y: np.ndarray, seed: int = 42
) -> FittedHead:
    torch.manual_seed(seed)
    x = torch.from_numpy(columns(train_x, spec.layers)).float()
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    x = (x - mean) / std
    y = torch.from_numpy(train_y).long()
    vx = (torch.from_numpy(columns(val_x, spec.layers)).float() - mean) / std
    head = make_head(x.shape[1], spec.hidden, spec.dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    best, best_state = -1.0, None
    generator = torch.Generator().manual_seed(seed)
    for _ in range(spec.epochs):
        head.train()
        for batch in torch.randperm(len(x), generator=generator).split(spec.batch_size):
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(head(x[batch]), y[batch]).backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            accuracy = float((head(vx).argmax(-1).numpy() == val_y).mean())
        if accuracy > best:
            best, best_state = accuracy, {k: v.clone() for k, v in head.state_dict().items()}
    head.load_state_dict(best_state)
    return FittedHead(spec, fold_standardization(head, mean, std), best)


def fold_standardization(head: torch.nn.Sequential, mean: torch.Tensor, std: torch.Tensor) -> torch.nn.Sequential:
    """The same function of raw features: W((x - m) / s) + b = (W / s) x + (b - W m / s)."""
    first = head[1]  # after the dropout
    with torch.no_grad():
        weight = first.weight / std
        first.bias -= (weight * mean).sum(1)
        first.weight.copy_(weight)
    return head.eval()


def calibrate(fitted: FittedHead, val_x: np.ndarray, val_y: np.ndarray) -> FittedHead:
    logits = torch.from_numpy(fitted.logits(val_x))
    fitted.temperature = temperature_from_logits(logits, torch.from_numpy(val_y).long())
    return fitted


def select(train_x, train_y, val_x, val_y, specs=SPECS) -> tuple[FittedHead, list[dict]]:
    """Every spec fitted; the best by validation accuracy, calibrated; and the comparison."""
    fitted = [fit(s, train_x, train_y, val_x, val_y) for s in specs]
    table = [
        s.__dict__ | {"validation_accuracy": round(f.validation_accuracy, 4)}
        for s, f in zip(specs, fitted, strict=True)
    ]
    best = max(fitted, key=lambda f: f.validation_accuracy)
    return calibrate(best, val_x, val_y), table
