"""Reliability tooling: servers with special settings, worker processes, the soak run."""

import review_sentiment  # noqa: F401  # first: sets the offline variables (review_sentiment/settings.py)
