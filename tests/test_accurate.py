"""`sentiment-accurate`, the pooled-encoder model on request (issue #22 item 6), with a tiny
random pooled checkpoint in its layout: its archive (encoder, head, notice, sha256), the same
handler behind it (validation, batching, calibration, explanations, error kinds), the setting
that registers it, and a real TorchServe serving both models: REST and gRPC answers name the
model, a bad request in a batch fails alone, the CLI picks the model, the default registers only
the fast one."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from review_sentiment import cli, paths
from review_sentiment.client.grpc_client import GrpcClient, GrpcPredictionError
from review_sentiment.core.classifier import SentimentClassifier
from review_sentiment.core.errors import ErrorKind
from review_sentiment.core.layout import ENCODER_DIR, HEAD_FILE, NOTICE_FILES
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.serve import archive
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.sandbox import sandbox
from review_sentiment.serve.server import accurate_models
from review_sentiment.serve.versions import ArchiveInfo, checkpoint_sha256
from review_sentiment.settings import ServiceSettings
from tests.conftest import TEST_MODEL_CONFIG
from tests.helpers import check_prediction, handler_context, histogram, send_at_once, start_batch
from training.tiny_model import make_tiny_pooled_checkpoint

ACCURATE = paths.ACCURATE_MODEL_NAME


@pytest.fixture(scope="module")
def pooled(tmp_path_factory) -> Path:
    return make_tiny_pooled_checkpoint(tmp_path_factory.mktemp("pooled") / "checkpoint")


# ---- the archive ----


def test_the_archive_stages_the_committed_head_notice_and_an_encoder_from_elsewhere(pooled, tmp_path):
    """models/sentiment-accurate (config, head, GEMMA_NOTICE.md) with an encoder folder kept
    outside it, as `make archive-accurate` passes EmbeddingGemma from the data cache."""
    archive._stage(paths.ACCURATE_MODEL, tmp_path / "stage", encoder=pooled / ENCODER_DIR)
    staged = tmp_path / "stage" / "checkpoint"
    assert (staged / "GEMMA_NOTICE.md").read_text() == (paths.ACCURATE_MODEL / "GEMMA_NOTICE.md").read_text()
    assert (staged / HEAD_FILE).read_bytes() == (paths.ACCURATE_MODEL / HEAD_FILE).read_bytes()
    assert json.loads((staged / "config.json").read_text())["model_kind"] == "pooled"
    encoder = {p.name for p in (staged / ENCODER_DIR).iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"} <= encoder
    # Not the committed folder's training leftovers: the soft labels and the report stay out.
    assert not (staged / "teacher_labels.npz").exists() and not (staged / "report").exists()


def test_a_pooled_archive_carries_encoder_head_notice_and_their_sha256(pooled, tmp_path):
    checkpoint = tmp_path / "checkpoint"
    shutil.copytree(pooled, checkpoint)
    shutil.copy2(paths.ACCURATE_MODEL / NOTICE_FILES[0], checkpoint)
    mar = build_archive(checkpoint, tmp_path / "store", ACCURATE, paths.ACCURATE_MODEL_CONFIG)
    with zipfile.ZipFile(mar) as zipped:
        names = set(zipped.namelist())
    assert {
        "checkpoint/config.json",
        "checkpoint/head.safetensors",
        "checkpoint/GEMMA_NOTICE.md",
        "checkpoint/encoder/model.safetensors",
        "checkpoint/encoder/config.json",
        "checkpoint/encoder/tokenizer.json",
    } <= names
    info = ArchiveInfo.read(mar)
    # The head's bytes and the encoder's, hashed in that order: either one changed changes it.
    assert info.checkpoint_sha256 == checkpoint_sha256(checkpoint)
    assert info.checkpoint_sha256 != checkpoint_sha256(checkpoint / ENCODER_DIR)
    assert info.version == f"sha-{info.checkpoint_sha256[:12]}"
    assert (info.model_name, info.workers) == (ACCURATE, (1, 1))
    assert info.model_config["responseTimeout"] >= 120  # a 300M encoder's batch on a busy CPU


def test_a_pooled_checkpoint_without_its_encoder_is_refused_in_words(pooled, tmp_path):
    checkpoint = tmp_path / "no-encoder"
    checkpoint.mkdir()
    for name in ("config.json", HEAD_FILE):
        shutil.copy2(pooled / name, checkpoint)
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        build_archive(checkpoint, tmp_path / "store", ACCURATE)
    with pytest.raises(SystemExit, match="No model checkpoint"):
        archive.main(["--checkpoint", str(checkpoint), "--model-store", str(tmp_path / "store")])


# ---- the setting ----


def test_the_accurate_model_is_registered_only_when_the_setting_asks(tmp_path):
    assert ServiceSettings().accurate_model is False
    assert accurate_models(ServiceSettings.from_env({"SENTIMENT_MODEL_STORE": str(tmp_path)})) == {}
    on = ServiceSettings.from_env({"SENTIMENT_MODEL_STORE": str(tmp_path), "SENTIMENT_ACCURATE_MODEL": "on"})
    with pytest.raises(SystemExit, match="make archive-accurate"):
        accurate_models(on)
    (tmp_path / f"{ACCURATE}.mar").write_bytes(b"")
    assert accurate_models(on) == {ACCURATE: tmp_path / f"{ACCURATE}.mar"}


def test_make_serve_builds_the_accurate_archive_only_when_asked(tmp_path):
    """`make -n serve` (nothing run): the accurate .mar is built only with the setting on."""
    env = {**os.environ, "SENTIMENT_MODEL_STORE": str(tmp_path)}
    env.pop("SENTIMENT_ACCURATE_MODEL", None)

    def planned() -> str:
        return subprocess.run(
            ["make", "-n", "serve"], cwd=paths.REPO, env=env, capture_output=True, text=True, check=True
        ).stdout

    assert "archive-accurate" not in planned()
    env["SENTIMENT_ACCURATE_MODEL"] = "on"
    assert "-m review_sentiment archive-accurate" in planned()


def test_the_accurate_model_config_is_the_defaults_with_one_worker_and_a_long_timeout():
    default = yaml.safe_load(paths.MODEL_CONFIG.read_text())
    accurate = yaml.safe_load(paths.ACCURATE_MODEL_CONFIG.read_text())
    assert (accurate["minWorkers"], accurate["maxWorkers"]) == (1, 1)
    assert accurate["responseTimeout"] > default["responseTimeout"]
    assert accurate["clientTimeoutInMills"] == default["clientTimeoutInMills"]
    assert accurate["handler"]["cpu_precision"] != "int8"  # refused for a pooled model
    InferenceSettings.from_sources(accurate["handler"])  # every handler key is a known setting


# ---- the handler, with TorchServe's own Context ----


@pytest.fixture(scope="module")
def pooled_model_dir(tmp_path_factory, pooled) -> Path:
    from handler.sentiment_handler import CHECKPOINT_DIR

    folder = tmp_path_factory.mktemp("pooled_model_dir")
    shutil.copytree(pooled, folder / CHECKPOINT_DIR)
    return folder


HANDLER_SETTINGS = {"max_length": 32, "max_chars": 300, "torch_threads": 1, "explain_steps": 8}


@pytest.fixture(scope="module")
def accurate_handler(pooled_model_dir):
    from handler.sentiment_handler import SentimentHandler

    handler = SentimentHandler()
    handler.initialize(handler_context(pooled_model_dir, HANDLER_SETTINGS, model_name=ACCURATE))
    return handler


def test_the_handler_serves_a_pooled_model_batch_with_errors_calibration_and_explanations(
    accurate_handler, pooled_model_dir, pooled
):
    context = handler_context(pooled_model_dir, HANDLER_SETTINGS, model_name=ACCURATE)
    rows = [
        {"body": "Soft and warm, love it"},
        {"body": ""},
        {"body": "Battery lasts two days"},
        {"body": "z" * 301},
        {"body": b"\xff\xfe broken"},
        {"body": "Pilled after one wash"},
    ]
    headers = [{"Content-Type": "text/plain"}] * 6
    headers[2] = {"Content-Type": "text/plain", "explain": "True"}
    start_batch(context, headers)
    responses = [json.loads(r) for r in accurate_handler.handle(rows, context)]
    statuses = [context.get_response_status(i)[0] for i in range(6)]
    assert statuses == [200, 400, 200, 413, 400, 200]
    assert [r["type"] for i, r in enumerate(responses) if statuses[i] != 200] == [
        ErrorKind.EMPTY_TEXT, ErrorKind.TEXT_TOO_LONG, ErrorKind.NOT_UTF8
    ]  # fmt: skip
    for i in (0, 5):
        check_prediction(responses[i])
        assert responses[i]["model"] == ACCURATE
    assert responses[2]["model"] == ACCURATE and [a["word"] for a in responses[2]["attributions"]] == [
        "Battery", "lasts", "two", "days"
    ]  # fmt: skip
    # Calibrated as the core alone (the checkpoint's temperature, 1.5), with the prompt.
    core = SentimentClassifier.load(pooled, InferenceSettings(warmup=False, explain=False, max_length=32))
    [alone] = core.predict(["Pilled after one wash"])
    assert core.temperature == 1.5
    assert responses[5]["probabilities"] == pytest.approx(alone.probabilities, abs=1e-4)


# ---- a real TorchServe with both models ----


@pytest.fixture(scope="module")
def both(tmp_path_factory, tiny_checkpoint, pooled):
    """TorchServe serving the tiny DistilBERT as `sentiment` and the tiny pooled model as
    `sentiment-accurate` (its own model-config: one worker, the test's batching), token auth on."""
    store = tmp_path_factory.mktemp("both_store")
    config = store.parent / "model-config.both.yaml"
    config.write_text(yaml.safe_dump(TEST_MODEL_CONFIG))
    build_archive(tiny_checkpoint, store, "sentiment", config)
    accurate_store = tmp_path_factory.mktemp("accurate_store")  # elsewhere: the sandbox links it in
    mar = build_archive(pooled, accurate_store, ACCURATE, config)
    run = tmp_path_factory.mktemp("both_run")
    with sandbox(store / "sentiment.mar", run, timeout=240, extra_models={ACCURATE: mar}) as running:
        yield running


def test_rest_and_grpc_answers_name_the_model_that_answered(both):
    fast, accurate = both.new_client(), both.new_client(model=ACCURATE)
    text = "Great value for the price, my new favourite mascara"
    fast_body, accurate_body = fast.predict(text), accurate.predict(text)
    for body, name in ((fast_body, "sentiment"), (accurate_body, ACCURATE)):
        check_prediction(body)
        assert body["model"] == name and body["model_version"].startswith("sha-")
    assert fast_body["probabilities"] != accurate_body["probabilities"]
    explained = accurate.explain("Battery lasts two days")
    assert explained["model"] == ACCURATE and [a["word"] for a in explained["attributions"]] == [
        "Battery", "lasts", "two", "days"
    ]  # fmt: skip
    with GrpcClient.for_run_dir(both.run_dir, model=ACCURATE) as grpc_client:
        body = grpc_client.predict(text)
        assert body["model"] == ACCURATE
        assert body["probabilities"] == pytest.approx(accurate_body["probabilities"], abs=1e-5)
        with pytest.raises(GrpcPredictionError) as caught:
            grpc_client.predict("   ")
        assert caught.value.status == 400 and "empty" in caught.value.details.lower()


def test_a_bad_request_in_an_accurate_batch_fails_alone(both):
    client = both.new_client(model=ACCURATE)
    before = histogram(client.metrics(), "BatchSize")
    bad = {3: "", 7: "z" * 5000}
    payloads = [bad.get(i, f"Review {i}: {'lovely' if i % 2 else 'awful'}") for i in range(12)]
    results = send_at_once(client, payloads)
    for i, (status, body) in enumerate(results):
        if i in bad:
            assert 400 <= status < 500 and body["type"] in (ErrorKind.EMPTY_TEXT, ErrorKind.TEXT_TOO_LONG)
        else:
            assert status == 200 and body["model"] == ACCURATE
    after = histogram(client.metrics(), "BatchSize")
    assert after["count"] - before.get("count", 0) < after["sum"] - before.get("sum", 0), "never batched"


def test_the_cli_predicts_with_the_model_asked_for(both, capsys):
    run_dir = str(both.run_dir)
    assert cli.main(["--run-dir", run_dir, "predict", "--model", ACCURATE, "Cosy and warm"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == ACCURATE
    assert cli.main(["--run-dir", run_dir, "predict", "Cosy and warm"]) == 0
    assert json.loads(capsys.readouterr().out)["model"] == "sentiment"


def test_the_default_server_registers_only_the_fast_model(client):
    models = client._checked(client.request("GET", "management", "/models"))["models"]
    assert [m["modelName"] for m in models] == ["sentiment"]


# ---- the UI's choice ----


@pytest.fixture(scope="module")
def both_ui_url(both):
    from tests.test_ui import serve

    yield from serve(both.new_client())


def test_the_ui_api_answers_with_the_model_chosen(both_ui_url):
    from gradio_client import Client

    api = Client(both_ui_url, verbose=False, download_files=False)
    _, timing, _ = api.predict("Soft and warm", ACCURATE, api_name="/classify")
    assert f"by model **{ACCURATE}** version **sha-" in (timing["value"] if isinstance(timing, dict) else timing)
    _, timing, _ = api.predict("Soft and warm", api_name="/classify")  # the choice's default: the fast model
    assert "by model **sentiment** version" in (timing["value"] if isinstance(timing, dict) else timing)
    summary, table, _ = api.predict("Great mascara\nBroke after a week", ACCURATE, api_name="/classify_lines")
    assert summary.startswith("2 reviews") and summary.endswith(f"by model **{ACCURATE}**.")


def test_the_page_offers_the_choice_and_says_which_model_answered(page, both_ui_url):
    from tests.browser import classify, expect, open_page, screenshot

    open_page(page, both_ui_url)
    choice = page.locator("#model-choice")
    expect(choice).to_be_visible()
    expect(choice.get_by_label("Fast (sentiment, DistilBERT)")).to_be_checked()  # the default
    choice.get_by_label("Accurate (EmbeddingGemma-300M, slower)").check()
    classify(page, "The zip broke on the second day.")
    expect(page.locator("#timing")).to_contain_text(f"by model {ACCURATE} version sha-")
    screenshot(page, "accurate-choice")
