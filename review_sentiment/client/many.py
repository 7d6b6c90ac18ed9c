"""Classify many reviews through TorchServe with several requests in flight, so its batching is used.

One place for it: the CLI (`predict --file`) and the UI's batch mode both call it. A refused
review does not stop the others: its result is {"error": {"code": ..., "message": ...}}.
The threads share the client and its KeyFile: when the key expires under them, it is renewed
once for all (client/keys.py), and a request a crashed worker lost is sent again (client/retry.py).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Protocol

import requests

from review_sentiment.client.refusals import ServiceError

# Two batches of the default batchSize (config/model-config.yaml): one computing, one being gathered.
DEFAULT_CONCURRENCY = 16


class Predicts(Protocol):
    """A client of either transport: rest.TorchServeClient or grpc_client.GrpcClient."""

    def predict(self, text: str) -> dict: ...


def error_result(error: Exception) -> dict:
    """The result row of a review that got no prediction: the server's refusal (its kind, words
    and HTTP status, from either transport) or the connection's failure (code None)."""
    if isinstance(error, ServiceError):
        body = error.body if isinstance(error.body, dict) else {}
        return {"error": {**body, **error.to_dict(), "code": error.status}}
    return {"error": {"code": None, "type": type(error).__name__, "message": str(error)}}


def iter_predictions(
    client: Predicts, texts: Sequence[str], concurrency: int = DEFAULT_CONCURRENCY
) -> Iterator[tuple[int, dict]]:
    """(index, result) pairs as the answers arrive (not in input order), for progress display."""

    def one(text: str) -> dict:
        try:
            return client.predict(text)
        except (ServiceError, requests.RequestException) as error:
            return error_result(error)

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        futures = {pool.submit(one, text): i for i, text in enumerate(texts)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def predict_many(client: Predicts, texts: Sequence[str], concurrency: int = DEFAULT_CONCURRENCY) -> list[dict]:
    """One result per text, in input order."""
    results: list[dict] = [{}] * len(texts)
    for i, result in iter_predictions(client, texts, concurrency):
        results[i] = result
    return results
