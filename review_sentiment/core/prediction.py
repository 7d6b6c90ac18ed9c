"""One review's answer: the label, its probability and every label's probability."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Prediction:
    label: str
    score: float  # probability of `label`
    probabilities: dict[str, float]

    def to_dict(self) -> dict[str, object]:
        return {"label": self.label, "score": self.score, "probabilities": self.probabilities}
