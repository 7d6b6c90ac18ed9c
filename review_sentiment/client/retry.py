"""Retrying a prediction TorchServe accepted and then lost, shared by the REST and gRPC clients.

A worker that crashes (kill -9, out of memory) or hangs past responseTimeout takes the batch it
held with it: each of those requests gets a 500 ("Worker died.", "Backend worker did not respond
in given time") or a 507 "Worker died." (seen in one of three kill -9 runs). Predictions are
idempotent, so the clients send such a request again after a bounded backoff; while a single
worker restarts, the frontend answers 503 "has no worker", which is retried too, but only after
a 500 or 507: a fresh 503 is the server shedding load (its queue is full, and TorchServe says
the same words for both), and retrying it would only add to the load.
"""

from __future__ import annotations

import random
import time

# 15.5 s in all (±20 % jitter): a killed worker was READY again after 5.6 s on a quiet 2-core
# machine (released model), and after 11.4 s on the same machine busy with a training run.
RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)

# TorchServe 0.12's 503 text both when its job queue is full and when the model has no worker.
NO_WORKER = "has no worker to serve inference request"


LOST = (500, 507)  # TorchServe's statuses for the requests of a batch whose worker died or hung


def should_retry(status: int | None, message: str, after_loss: bool) -> bool:
    """Whether a failed prediction is worth sending again. `after_loss`: this request already got
    a 500 or 507 once (so a 503 "no worker" now means its worker is restarting, not an overload)."""
    if status in LOST:
        return True
    return after_loss and status == 503 and NO_WORKER in message


def pause(delay_s: float) -> None:
    # Jitter, so the requests of one lost batch do not come back as one burst.
    time.sleep(delay_s * random.uniform(0.8, 1.2))
