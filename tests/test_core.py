"""The inference core without TorchServe: encoding policy, validation, settings, devices."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from review_sentiment.core.classifier import SentimentClassifier, default_threads, prepare_model, resolve_device
from review_sentiment.core.encoding import head_tail, pad_batch, special_tokens, token_ids
from review_sentiment.core.errors import EmptyText, MalformedJson, NotUtf8, RequestError, TextTooLong
from review_sentiment.core.onnx_int8 import OnnxInt8Model, quantize_int8
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.core.validation import payload_of, review_text
from review_sentiment.status_codes import http_status
from training.tiny_model import make_tiny_checkpoint


@pytest.fixture(scope="module")
def classifier(tiny_checkpoint) -> SentimentClassifier:
    return SentimentClassifier.load(tiny_checkpoint, InferenceSettings(max_length=32, max_chars=500))


def test_head_tail_keeps_both_ends():
    ids = list(range(100))
    assert head_tail(ids, 10, 0.3) == [0, 1, 2, 93, 94, 95, 96, 97, 98, 99]
    assert head_tail(ids, 10, 0.0) == list(range(90, 100))
    assert head_tail(ids, 10, 1.0) == list(range(10))
    assert head_tail([1, 2], 10, 0.25) == [1, 2]


def test_token_ids_truncate_long_reviews_to_max_length_with_special_tokens(classifier):
    tok = classifier.tokenizer
    prefix, suffix = special_tokens(tok)
    assert (prefix, suffix) == ([tok.cls_token_id], [tok.sep_token_id])
    long_review = "filler words here " * 200 + "but in the end I returned it"
    ids = token_ids(tok, ["short one", long_review], max_length=32, head_fraction=0.25)
    assert len(ids[1]) == 32 and ids[1][0] == tok.cls_token_id and ids[1][-1] == tok.sep_token_id
    assert tok.decode(ids[1][-8:-1]) == "but in the end i returned it"  # the verdict at the end survives
    assert tok.decode(ids[1][1:8]).startswith("filler words here")
    assert len(ids[0]) == 4


def test_pad_batch_pads_to_the_longest_of_the_batch():
    batch = pad_batch([[5, 6, 7], [5]], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]


def test_pad_batch_rounds_the_length_up_to_a_bucket():
    batch = pad_batch([[5, 6, 7], [5]], pad_id=0, multiple=4)
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [5, 0, 0, 0]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    assert pad_batch([[1] * 8], pad_id=0, multiple=4)["input_ids"].shape == (1, 8)  # already a multiple


@pytest.mark.parametrize(
    ("payload", "content_type", "error"),
    [
        ("", None, EmptyText),
        (" \n\t ", "text/plain", EmptyText),
        (b"\xff\xfe bad", None, NotUtf8),
        (b"{not json", "application/json", MalformedJson),
        ({"review": "no text key"}, "application/json", MalformedJson),
        ({"text": 42}, "application/json", MalformedJson),
        ([1, 2], "application/json", MalformedJson),
        ("x" * 501, "text/plain", TextTooLong),
    ],
)
def test_invalid_payloads_raise_typed_errors(payload, content_type, error):
    with pytest.raises(error) as caught:
        review_text(payload, max_chars=500, content_type=content_type)
    assert 400 <= http_status(caught.value.kind) < 500
    body = caught.value.to_dict()
    assert body["type"] == error.__name__ and body["message"]


def test_valid_payloads():
    assert review_text("Great", 500) == "Great"
    assert review_text(b"Caf\xc3\xa9 cream", 500) == "Café cream"
    assert review_text({"text": "Nice"}, 500) == "Nice"
    assert review_text(b'{"text": "From gRPC"}', 500) == "From gRPC"
    assert review_text(b"{curly start, not JSON}", 500) == "{curly start, not JSON}"
    assert payload_of({"body": b"x"}) == b"x" and payload_of({"data": "y"}) == "y"


def test_classify_keeps_order_and_fails_only_bad_requests(classifier):
    payloads = ["I love it", "", {"text": "meh"}, b"\xff", "x" * 600, "Terrible"]
    outcomes, stats = classifier.classify(payloads)
    assert len(outcomes) == len(payloads)
    kinds = [type(o).__name__ for o in outcomes]
    assert kinds == ["Prediction", "EmptyText", "Prediction", "NotUtf8", "TextTooLong", "Prediction"]
    assert stats.size == 3 and stats.tokens <= stats.padded_tokens
    # Each valid answer equals what the text gets on its own: batching changes nothing.
    alone = classifier.predict(["Terrible"])[0]
    assert outcomes[5].probabilities == pytest.approx(alone.probabilities, abs=1e-5)
    for o in outcomes:
        if not isinstance(o, RequestError):
            assert o.score == max(o.probabilities.values())
            assert sum(o.probabilities.values()) == pytest.approx(1.0)
            assert o.label == max(o.probabilities, key=o.probabilities.get)


def test_all_invalid_batch_runs_no_model(classifier):
    outcomes, stats = classifier.classify(["", b"\xff"])
    assert stats is None and all(isinstance(o, RequestError) for o in outcomes)


def test_settings_defaults_yaml_then_env():
    assert InferenceSettings.from_sources(None, {}) == InferenceSettings()
    s = InferenceSettings.from_sources(
        {"max_length": 128, "cpu_precision": "bf16"}, {"SENTIMENT_MAX_LENGTH": "64", "SENTIMENT_WARMUP": "false"}
    )
    assert (s.max_length, s.cpu_precision, s.warmup) == (64, "bf16", False)
    with pytest.raises(ValueError, match="cpu_precision"):
        InferenceSettings.from_sources({"cpu_precision": "fp8"}, {})
    with pytest.raises(ValueError, match="max_length"):
        InferenceSettings(max_length=4096)


def test_padded_length_past_the_positions_is_refused_at_start(tmp_path):
    """512 tokens padded to a multiple of 48 is 528: every long batch would overflow the
    position embeddings, so the settings are refused with the way out in the message."""
    with pytest.raises(ValueError, match=r"528 tokens, more than the model's 512 positions.*480"):
        InferenceSettings(max_length=512, pad_multiple=48)
    with pytest.raises(ValueError, match="528"):
        InferenceSettings.from_sources({"max_length": 512}, {"SENTIMENT_PAD_MULTIPLE": "48"})
    assert InferenceSettings(max_length=512, pad_multiple=64).padded_length == 512
    # A model with fewer positions than DistilBERT's 512 is checked when it is loaded.
    short = make_tiny_checkpoint(tmp_path / "short", positions=64)
    with pytest.raises(ValueError, match="96 tokens, more than the model's 64 positions"):
        SentimentClassifier.load(short, InferenceSettings(max_length=70, pad_multiple=32, warmup=False))


def test_device_selection(monkeypatch):
    assert resolve_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("0") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("1") == torch.device("cuda:1")
    assert resolve_device(None) == torch.device("cpu")


def test_threads_never_oversubscribe(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_threads(1) == 2 and default_threads(2) == 1 and default_threads(4) == 1


@pytest.mark.parametrize("precision", ["fp32", "bf16", "int8"])
def test_cpu_precisions(tiny_checkpoint, precision):
    clf = SentimentClassifier.load(tiny_checkpoint, InferenceSettings(cpu_precision=precision, warmup=False))
    if precision == "int8":
        assert isinstance(clf.model, OnnxInt8Model)
    else:
        dtype = {"fp32": torch.float32, "bf16": torch.bfloat16}[precision]
        assert next(clf.model.parameters()).dtype == dtype
    prediction = clf.predict(["Lovely texture, will buy again"])[0]
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-3)


def test_int8_is_onnx_runtime_int8_with_fp32_embeddings(tiny_checkpoint, tmp_path):
    """Attention fused and quantized (QAttention), the other MatMuls int8 (MatMulInteger), the
    embeddings fused in fp32 (EmbedLayerNormalization, no quantized Gather)."""
    import onnx
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint, dtype=torch.float32)
    graph = onnx.load(str(quantize_int8(model, tmp_path))).graph
    ops = {node.op_type for node in graph.node}
    assert {"QAttention", "MatMulInteger", "EmbedLayerNormalization"} <= ops
    assert not ops & {"Attention", "MatMul", "Gemm", "QGather"}
    embedding = next(node for node in graph.node if node.op_type == "EmbedLayerNormalization")
    weights = {init.name: init for init in graph.initializer}
    assert weights[embedding.input[2]].data_type == onnx.TensorProto.FLOAT  # word embeddings
    assert model.config._attn_implementation == "sdpa"  # exported with eager attention, then restored


def test_int8_agrees_with_fp32_at_every_batch_shape(tiny_checkpoint, tmp_path, monkeypatch):
    """Dynamic batch and sequence axes: batches of other sizes and lengths than the export's; the
    ONNX files go to a temporary folder that is gone once the session is loaded."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    settings = InferenceSettings(max_length=64, warmup=False, explain=False)
    int8 = SentimentClassifier.load(tiny_checkpoint, replace(settings, cpu_precision="int8"))
    fp32 = SentimentClassifier.load(tiny_checkpoint, replace(settings, cpu_precision="fp32"))
    assert not any(tmp_path.iterdir())
    texts = ["Lovely texture, will buy again", "Broke after a day", "meh " * 100, "ok"]
    for batch in (texts, texts[:1], texts[2:3]):
        for got, want in zip(int8.predict(batch), fp32.predict(batch), strict=True):
            assert got.label == want.label
            assert got.probabilities["positive"] == pytest.approx(want.probabilities["positive"], abs=0.01)


def test_gpu_precision_casts_for_cuda(tiny_checkpoint, monkeypatch):
    """On CUDA the weights are cast to gpu_precision (fp16 by default); checked with the
    device move stubbed out, since CI has no GPU."""
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_checkpoint)
    seen = {}

    def fake_to(*args, **kwargs):
        seen.update(kwargs)
        return model

    monkeypatch.setattr(model, "to", fake_to)
    prepare_model(model, torch.device("cuda:0"), InferenceSettings())
    assert seen == {"device": torch.device("cuda:0"), "dtype": torch.float16}


@pytest.mark.parametrize(("native_bf16", "expected"), [(True, torch.bfloat16), (False, torch.float32)])
def test_auto_cpu_precision_follows_the_cpu(tiny_checkpoint, monkeypatch, native_bf16, expected):
    from review_sentiment.core import classifier as core

    monkeypatch.setattr(core, "cpu_has_bf16", lambda: native_bf16)
    assert InferenceSettings().cpu_precision == "auto"
    clf = SentimentClassifier.load(tiny_checkpoint, InferenceSettings(warmup=False))
    assert next(clf.model.parameters()).dtype == expected


def test_calibration_temperature_scales_confidences_not_labels(tmp_path):
    """A checkpoint's `calibration_temperature` (fitted at training time) divides the logits
    before the softmax: the same label, a softer score; no temperature means T = 1."""
    import json

    from training.tiny_model import make_tiny_checkpoint

    plain = make_tiny_checkpoint(tmp_path / "plain", seed=3)
    hot = make_tiny_checkpoint(tmp_path / "hot", seed=3)
    config = json.loads((hot / "config.json").read_text())
    (hot / "config.json").write_text(json.dumps(config | {"calibration_temperature": 4.0}))
    texts = ["Lovely texture, will buy again", "Broke after a day"]
    settings = InferenceSettings(cpu_precision="fp32", warmup=False)
    raw = SentimentClassifier.load(plain, settings)
    scaled = SentimentClassifier.load(hot, settings)
    assert raw.temperature == 1.0 and scaled.temperature == 4.0
    with torch.inference_mode():
        batch = pad_batch(token_ids(raw.tokenizer, texts, 256, 0.25), raw.tokenizer.pad_token_id)
        logits = raw.model(**batch).logits.float()
    expected = torch.softmax(logits / 4.0, dim=-1)[:, 1]
    for got_raw, got_scaled, p in zip(raw.predict(texts), scaled.predict(texts), expected.tolist(), strict=True):
        assert got_scaled.label == got_raw.label
        assert got_scaled.probabilities["positive"] == pytest.approx(p, abs=1e-5)
        assert abs(got_scaled.score - 0.5) < abs(got_raw.score - 0.5)


def test_explanations_explain_the_calibrated_log_odds(tmp_path):
    """With a temperature, the explained log-odds are those of the served probabilities."""
    import json
    import math

    from training.tiny_model import make_tiny_checkpoint

    path = make_tiny_checkpoint(tmp_path / "hot", seed=5)
    config = json.loads((path / "config.json").read_text())
    (path / "config.json").write_text(json.dumps(config | {"calibration_temperature": 3.0}))
    clf = SentimentClassifier.load(path, InferenceSettings(cpu_precision="fp32", warmup=False))
    explanation = clf.explain(["Arrived broken and support never answered."])[0]
    p = explanation.prediction.score
    assert explanation.log_odds == pytest.approx(math.log(p / (1 - p)), abs=1e-4)
