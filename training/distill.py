"""Distillation: the student learns from human labels and from the teacher's soft labels.

Every training example may carry a hard label (-100 where none: a pool sentence) and a soft
label p_teacher (NaN where the teacher never saw it). Its loss is

    (1 - alpha) * CE(student, hard) + alpha * CE(student, p_teacher)   both present
    CE(student, hard)  or  CE(student, p_teacher)                     one present

with p_teacher the teacher's calibrated probability (its temperature applied), so the student
learns the teacher's confidence as well as its verdict ("soft cross-entropy", Hinton et al. 2015,
at the teacher's calibrated temperature rather than a tuned one).
"""

from __future__ import annotations

import math

import torch
from transformers import Trainer

NO_LABEL = -100


def distillation_loss(logits: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor, alpha: float) -> torch.Tensor:
    log_p = torch.log_softmax(logits.float(), dim=-1)
    has_hard, has_soft = labels != NO_LABEL, ~torch.isnan(soft)
    hard_ce = -log_p.gather(1, labels.clamp(min=0).unsqueeze(1)).squeeze(1)
    p = soft.nan_to_num(0.0)
    soft_ce = -(p * log_p[:, 1] + (1 - p) * log_p[:, 0])
    hard_weight = torch.where(has_soft, 1.0 - alpha, 1.0) * has_hard
    soft_weight = torch.where(has_hard, alpha, 1.0) * has_soft
    return (hard_weight * hard_ce + soft_weight * soft_ce).sum() / len(logits)


class DistillationTrainer(Trainer):
    """A Trainer whose batches carry `soft` beside `labels` (training.train's collator)."""

    def __init__(self, *args, alpha: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.alpha = alpha

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        labels, soft = inputs.pop("labels"), inputs.pop("soft")
        outputs = model(**inputs)
        loss = distillation_loss(outputs.logits, labels, soft, self.alpha)
        return (loss, outputs) if return_outputs else loss


def soft_label(probability: float | None) -> float:
    return math.nan if probability is None else probability
