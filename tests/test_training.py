"""Training pipeline: loaders on small files the tests write, splits, the exact MiniLM ->
DistilBERT conversion, and a smoke fine-tune whose checkpoint the serving core loads."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
import torch

from review_sentiment.core.classifier import SentimentClassifier
from review_sentiment.core.settings import InferenceSettings
from training import data as datasets
from training.base_model import load_base, minilm_path


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def test_sephora_schema_loads_without_options(tmp_path):
    path = write_csv(
        tmp_path / "reviews_0-250.csv",
        ["author_id", "rating", "is_recommended", "review_text", "product_id"],
        [
            [1, 5, 1, "Love this serum, my skin glows", "P1"],
            [2, 1, 0, "Broke me out <br /> never again", "P1"],
            [3, 4, "", "No recommendation given", "P2"],
            [4, 2, 0, "   ", "P2"],
            [5, 3, "maybe", "Unknown label value", "P3"],
            [6, 5, 1.0, "Float-looking label", "P3"],
        ],
    )
    data = datasets.load_csv(path)
    assert data.labels == [1, 0, 1]
    assert data.texts[1] == "Broke me out \n never again"  # HTML breaks cleaned
    assert data.report.to_dict() == {
        "source": "reviews_0-250",
        "rows": 6,
        "kept": 3,
        "bad": {"missing label": 1, "empty text": 1, "unknown label": 1},
    }


def test_rating_only_csv_and_custom_columns(tmp_path):
    ratings = write_csv(
        tmp_path / "r.csv", ["review_text", "rating"], [["great", 5], ["fine", 4], ["meh", 3], ["bad", 1], ["x", ""]]
    )
    data = datasets.load_csv(ratings)
    assert data.labels == [1, 1, 0]
    assert data.report.bad == {"unknown label": 1, "missing label": 1}
    custom = write_csv(tmp_path / "c.csv", ["body", "verdict"], [["yes!", "thumbs-up"], ["no!", "thumbs-down"]])
    data = datasets.load_csv(custom, "body", "verdict", positive=["thumbs-up"], negative=["thumbs-down"])
    assert data.labels == [1, 0]
    with pytest.raises(ValueError, match="--text-column"):
        datasets.load_csv(custom)


def test_dedup_split_and_balance():
    rng = random.Random(1)
    texts = [f"review {i}" for i in range(300)]
    labels = [int(rng.random() < 0.3) for _ in texts]
    texts += ["review 1", "review 2", "twice"] + ["twice"]
    labels += [labels[1], labels[2], 1, 0]
    data = datasets.deduplicate(datasets.LabelledSet("toy", texts, labels, datasets.LoadReport("toy", len(texts))))
    assert len(data) == 300 and "twice" not in data.texts
    assert data.report.bad["duplicate text"] == 2 and data.report.bad["text with both labels"] == 2
    parts = datasets.split(data, seed=7)
    sets = [set(p.texts) for p in parts.values()]
    assert sum(map(len, sets)) == 300 and not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])
    share = sum(labels[:300]) / 300
    for part in parts.values():  # stratified
        assert abs(sum(part.labels) / len(part) - share) < 0.05
    again = datasets.split(data, seed=7)
    assert again["test"].texts == parts["test"].texts  # fixed seed, same split
    balanced = datasets.balance(data, seed=0)
    assert balanced.labels.count(0) == balanced.labels.count(1) == min(labels[:300].count(0), labels[:300].count(1))


def test_imdb_split_has_no_text_in_two_splits():
    data = datasets.deduplicate(datasets.load_imdb())
    assert data.report.rows == 50_000 and data.report.bad["duplicate text"] > 400
    parts = datasets.split(data, seed=42)
    train, val, test = (set(parts[k].texts) for k in ("train", "validation", "test"))
    assert not (train & val) and not (train & test) and not (val & test)
    assert len(train) + len(val) + len(test) == len(data)


def test_uci_sets_drop_the_empty_trailing_record():
    for name in ("amazon", "yelp"):
        data = datasets.load_uci(name)
        assert len(data) == 1000 and data.report.bad == {"empty text": 1}
        assert data.labels.count(1) == 500


def test_minilm_converts_exactly_into_distilbert():
    from transformers import AutoTokenizer, BertModel

    distil, tokenizer = load_base("minilm")
    bert = BertModel.from_pretrained(minilm_path(), add_pooling_layer=False).eval()
    distil.eval()
    assert type(distil).__name__ == "DistilBertForSequenceClassification"
    assert distil.config.id2label == {0: "negative", 1: "positive"}
    texts = [
        "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads.",
        "This foundation blends like a dream and lasts all day.",
    ]
    batch = AutoTokenizer.from_pretrained(minilm_path())(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        expected = bert(**batch).last_hidden_state
        got = distil.distilbert(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
    mask = batch["attention_mask"].bool()
    assert (expected[mask] - got[mask]).abs().max().item() < 1e-4


def test_smoke_fine_tune_lowers_loss_and_serves(tmp_path):
    from training import train

    rng = random.Random(0)
    good = ["love it", "great product", "works perfectly", "my favourite", "excellent quality"]
    bad = ["hate it", "terrible product", "broke quickly", "waste of money", "awful quality"]
    rows = [[f"{rng.choice(good if y else bad)} {i}", y] for i, y in enumerate([i % 2 for i in range(160)])]
    source = write_csv(tmp_path / "tiny.csv", ["text", "label"], rows)
    out = tmp_path / "run"
    args = ["--data", str(source), "--output-dir", str(out), "--max-length", "16", "--epochs", "2",
            "--batch-size", "16", "--lr", "3e-4", "--eval-steps", "8", "--val-limit", "16"]  # fmt: skip
    model_dir = train.main(args)
    info = json.loads((model_dir / "training_info.json").read_text())
    losses = [e["loss"] for e in info["log_history"] if "loss" in e]
    assert losses[-1] < losses[0] * 0.7, losses
    assert (model_dir / "model.safetensors").exists() and (out / "data_report.md").exists()
    classifier = SentimentClassifier.load(model_dir, InferenceSettings(max_length=16))
    predictions = classifier.predict(["great product, love it", "terrible, broke quickly"])
    assert [p.label for p in predictions] == ["positive", "negative"]


def test_base_model_accepts_a_local_checkpoint_folder(tiny_checkpoint):
    """`--base-model` takes any Hub id or folder; a DistilBERT folder loads as it is."""
    model, tokenizer = load_base(str(tiny_checkpoint))
    assert type(model).__name__ == "DistilBertForSequenceClassification"
    assert model.config.dim == 32 and model.config.id2label == {0: "negative", 1: "positive"}
    assert tokenizer("a review")["input_ids"][0] == tokenizer.cls_token_id
