"""The ceiling: the inference core in this process, no server, batched as TorchServe would.

`clients` clients each have one review waiting; they are answered in batches of at most
`batch_size` (the server's batchSize), one batch after another, and all send again once the
last batch is done. A review's latency runs from the start of its round to the end of its
batch, so above batch_size later batches include the wait for earlier ones, as in the server's
queue; at one client it is plain batch-1 latency. The process's CPU time per review over the
measured rounds is the model's own cost, which no server avoids.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from benchmarks.systems import Running
from review_sentiment.client.load_driver import Result, Sample, Window, summarize

if TYPE_CHECKING:  # torch and transformers load only where a classifier is made
    from review_sentiment.core.classifier import SentimentClassifier


def run_in_process(
    classifier: SentimentClassifier, texts: Sequence[str], clients: int, batch_size: int, window: Window
) -> Result:
    from review_sentiment.core.classifier import Prediction

    # The bytes a server receives, so validation and decoding are part of the work, as in the handler.
    payloads = [text.encode("utf-8") for text in texts]
    content_types = ["text/plain; charset=utf-8"] * clients
    window_start = time.monotonic() + window.warmup_s
    stop_at = window_start + window.duration_s
    samples: list[Sample] = []
    sent, measured, cpu_start = 0, 0, None  # measured: reviews classified since cpu_start
    while time.monotonic() < stop_at and (window.max_requests is None or sent < window.max_requests):
        round_start = time.monotonic()
        if cpu_start is None and round_start >= window_start:
            cpu_start = time.process_time()
        queue = [payloads[(sent + k) % len(payloads)] for k in range(clients)]
        sent += clients
        for first in range(0, clients, batch_size):
            batch = queue[first : first + batch_size]
            outcomes, _ = classifier.classify(batch, content_types[: len(batch)])
            done = time.monotonic()
            samples += [(round_start, done, isinstance(outcome, Prediction)) for outcome in outcomes]
            measured += len(outcomes) if cpu_start is not None else 0
    result = summarize(samples, window_start, stop_at)
    if cpu_start is None or not measured:
        return result
    return dataclasses.replace(
        result, cpu_ms_per_request={"process": 1000 * (time.process_time() - cpu_start) / measured}
    )


@dataclass
class CoreRunning(Running):
    """The core has no endpoint: its one load client, "core", calls it directly."""

    classifier: SentimentClassifier | None = None
    batch_size: int = 1

    def load(self, client: str, texts: Sequence[str], clients: int, window: Window, processes: int = 1) -> Result:
        return run_in_process(self.classifier, texts, clients, self.batch_size, window)


@dataclass
class InProcess:
    """The model alone on the whole machine (all cores in one process), whatever the server's layout."""

    config: dict  # the server's model-config: its handler settings and batchSize
    device: str = "cpu"
    name: str = "in-process"
    title: str = "in-process core (ceiling)"
    clients: tuple[str, ...] = ("core",)
    lengths: tuple[int, ...] | None = None

    @contextlib.contextmanager
    def start(self, checkpoint: Path, work: Path) -> Iterator[Running]:
        from review_sentiment.core.classifier import SentimentClassifier
        from review_sentiment.core.settings import InferenceSettings

        started = time.monotonic()
        settings = InferenceSettings.from_sources(self.config["handler"])
        classifier = SentimentClassifier.load(checkpoint, settings, self.device)
        running = CoreRunning({}, time.monotonic() - started, lambda: {"process": os.getpid()})
        running.classifier, running.batch_size = classifier, self.config["batchSize"]
        try:
            yield running
        finally:
            running.classifier = classifier = None  # the next system gets the memory back
            gc.collect()
