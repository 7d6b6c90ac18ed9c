"""Shared fixtures. Serving fixtures start a real TorchServe (Java frontend, Python workers)
with a tiny random DistilBERT, in a run folder of its own with free ports."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from review_sentiment.client.rest import TorchServeClient
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.sandbox import Sandbox, sandbox
from tests.browser import browser, page  # noqa: F401 (fixtures for the UI and image tests)
from tests.containers import image_figures, images  # noqa: F401 (fixtures for the image tests)
from training.tiny_model import make_tiny_checkpoint

# Batching is easy to observe with a generous delay; two workers allowed for scaling tests.
TEST_MODEL_CONFIG = {
    "minWorkers": 1,
    "maxWorkers": 1,
    "batchSize": 8,
    "maxBatchDelay": 300,
    "responseTimeout": 60,
    "handler": {"max_length": 64, "max_chars": 2000, "torch_threads": 1, "warmup": True},
}


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    return make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "checkpoint")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, tiny_checkpoint) -> Path:
    """A model folder as TorchServe unpacks the .mar into, for handler tests (one per module)."""
    from handler.sentiment_handler import CHECKPOINT_DIR  # TorchServe's modules: only where needed

    folder = tmp_path_factory.mktemp("model_dir")
    shutil.copytree(tiny_checkpoint, folder / CHECKPOINT_DIR)
    return folder


@pytest.fixture(scope="session")
def model_store(tmp_path_factory, tiny_checkpoint) -> Path:
    store = tmp_path_factory.mktemp("model_store")
    config = store.parent / "model-config.test.yaml"
    config.write_text(yaml.safe_dump(TEST_MODEL_CONFIG))
    build_archive(tiny_checkpoint, store, "sentiment", config)
    return store


@pytest.fixture(scope="session")
def server(tmp_path_factory, model_store) -> Iterator[Sandbox]:
    """A TorchServe with token auth ON (the default), serving the tiny model as 'sentiment'."""
    with sandbox(model_store / "sentiment.mar", tmp_path_factory.mktemp("run"), timeout=180) as running:
        yield running


@pytest.fixture
def client(server) -> TorchServeClient:
    """The project's REST client for the session `server`, fresh per test (tests rotate its keys)."""
    return server.new_client()
