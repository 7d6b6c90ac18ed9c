"""Benchmarks: in-process ceiling, TorchServe REST and gRPC, the Flask baseline, tuning sweeps."""

import review_sentiment  # noqa: F401  # first: sets the offline variables (review_sentiment/settings.py)
