"""The ceiling: the inference core in this process, no server, batched as TorchServe would.

`concurrency` clients each have one review waiting; they are answered in batches of at most
`batch_size` (the server's batchSize), one batch after another, and all send again once the
last batch is done. A review's latency runs from the start of its round to the end of its
batch, so at concurrency above batch_size later batches include the wait for earlier ones,
as in the server's queue. At concurrency 1 this is plain batch-1 latency. The process's CPU
time per review over the measured rounds is the model's own cost, which no server avoids.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from review_sentiment.client.load_driver import Result, Sample, Window, summarize
from review_sentiment.core.classifier import Prediction, SentimentClassifier


def run_in_process(
    classifier: SentimentClassifier, texts: Sequence[str], concurrency: int, batch_size: int, window: Window
) -> Result:
    # The bytes a server receives, so validation and decoding are part of the work, as in the handler.
    payloads = [text.encode("utf-8") for text in texts]
    content_types = ["text/plain; charset=utf-8"] * concurrency
    start_at = time.monotonic()
    window_start = start_at + window.warmup_s
    stop_at = window_start + window.duration_s
    samples: list[Sample] = []
    sent = 0
    cpu_start: float | None = None
    measured = 0  # reviews classified since cpu_start
    while time.monotonic() < stop_at and (window.max_requests is None or sent < window.max_requests):
        round_start = time.monotonic()
        if cpu_start is None and round_start >= window_start:
            cpu_start = time.process_time()
        queue = [payloads[(sent + k) % len(payloads)] for k in range(concurrency)]
        sent += concurrency
        for first in range(0, concurrency, batch_size):
            batch = queue[first : first + batch_size]
            outcomes, _ = classifier.classify(batch, content_types[: len(batch)])
            done = time.monotonic()
            samples += [(round_start, done, isinstance(outcome, Prediction)) for outcome in outcomes]
            measured += len(outcomes) if cpu_start is not None else 0
    result = summarize(samples, window_start, stop_at)
    if cpu_start is None or not measured:
        return result
    cpu_ms = 1000 * (time.process_time() - cpu_start) / measured
    return dataclasses.replace(result, cpu_ms_per_request={"process": cpu_ms})
