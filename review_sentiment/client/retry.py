"""Retrying a prediction TorchServe accepted and then lost, shared by the REST and gRPC clients.

A worker that crashes (kill -9, out of memory) or hangs past responseTimeout takes the batch it
held with it: each of those requests gets a 500 ("Worker died.", "Backend worker did not respond
in given time") or a 507 "Worker died." (seen in one of three kill -9 runs). Predictions are
idempotent, so the clients send such a request again after a bounded backoff; while a single
worker restarts, the frontend answers 503 "has no worker", which is retried too, but only after
a 500 or 507: a fresh 503 is the server shedding load (its queue is full, and TorchServe says
the same words for both), and retrying it would only add to the load. Over gRPC the same
answers come as INTERNAL (RESOURCE_EXHAUSTED for the 507) and INTERNAL "has no worker": the
policy is decided on the kinds both clients read (client/refusals.py), not on either's codes.
"""

from __future__ import annotations

import random
import time

from review_sentiment.client.refusals import NO_WORKER
from review_sentiment.core.errors import ErrorKind

# 15.5 s in all (±20 % jitter): a killed worker was READY again after 5.6 s on a quiet 2-core
# machine (released model), and after 11.4 s on the same machine busy with a training run.
RETRY_DELAYS_S: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0, 8.0)


def should_retry(kind: ErrorKind | None, message: str, after_loss: bool) -> bool:
    """Whether a failed prediction is worth sending again. `kind`: the failure's, as each client
    reads its transport's answer (client/refusals.py); `after_loss`: this request was already lost
    once (so "has no worker" now means its worker is restarting, not an overload)."""
    if kind == ErrorKind.WORKER_LOST:
        return True
    return after_loss and kind == ErrorKind.QUEUE_FULL_OR_NO_WORKER and NO_WORKER in message


def pause(delay_s: float) -> None:
    # Jitter, so the requests of one lost batch do not come back as one burst.
    time.sleep(delay_s * random.uniform(0.8, 1.2))
