"""Training pipeline: offline data, base-model conversion, fine-tuning, evaluation."""

import review_sentiment  # noqa: F401  # first: sets the offline variables (review_sentiment/settings.py)
