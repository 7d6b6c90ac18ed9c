"""Gradio web page for the review sentiment classifier (talks to TorchServe over REST)."""

import review_sentiment  # noqa: F401  # first: sets the offline variables (review_sentiment/settings.py)
