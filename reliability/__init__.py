"""Reliability tooling: the soak run and the good and bad requests it sends."""

import review_sentiment  # noqa: F401  # first: sets the offline variables (review_sentiment/settings.py)
