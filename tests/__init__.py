"""The tests. pytest imports this package before conftest.py and every test module, so this is
where the test process starts: the offline variables are set here, before anything imports
transformers or gradio (review_sentiment/core/offline.py; importing review_sentiment sets nothing)."""

from review_sentiment.core.offline import apply_offline

apply_offline()
