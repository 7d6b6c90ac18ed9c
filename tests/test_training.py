"""Training pipeline: loaders on small files the tests write, splits, the exact MiniLM ->
DistilBERT conversion, and a smoke fine-tune whose checkpoint the serving core loads."""

from __future__ import annotations

import csv
import json
import random
import re
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


def test_temperature_scaling_recovers_a_known_temperature():
    from training.train import temperature_from_logits

    torch.manual_seed(0)
    logits = torch.randn(6000, 2) * 3
    labels = torch.multinomial(torch.softmax(logits / 2.5, dim=-1), 1).squeeze(1)  # drawn at T = 2.5
    assert temperature_from_logits(logits, labels) == pytest.approx(2.5, rel=0.1)
    confident = torch.multinomial(torch.softmax(logits / 0.5, dim=-1), 1).squeeze(1)
    assert temperature_from_logits(logits, confident) == pytest.approx(0.5, rel=0.15)
    # A perfectly separated set would drive T to 0: the fit stops at what the core accepts.
    from review_sentiment.core.calibration import MIN_TEMPERATURE

    assert temperature_from_logits(logits, logits.argmax(-1)) == MIN_TEMPERATURE


def test_base_model_loads_a_stored_fp16_checkpoint_in_fp32(tmp_path):
    """Released checkpoints are stored in fp16; fine-tuning one must run in fp32 (fp16 on a CPU
    is unstable and many times slower)."""
    from training.tiny_model import make_tiny_checkpoint

    path = make_tiny_checkpoint(tmp_path / "fp16")
    model, _ = load_base(str(path))
    model.to(torch.float16).save_pretrained(path)
    reloaded, _ = load_base(str(path))
    assert {p.dtype for p in reloaded.parameters()} == {torch.float32}


def test_tweets_are_cleaned_and_filtered():
    assert datasets.clean_tweet("RT @united: lost my bag again http://t.co/x &amp; no reply") == (
        "lost my bag again & no reply"
    )
    assert datasets.clean_tweet("_@some_one: Who would want one_ ______ not me") == "Who would want one not me"
    tweets = datasets.load_tweets()
    bad = tweets.report.bad
    assert bad["neutral sentiment"] > 0 and bad["off topic (sports)"] > 0 and bad["off topic (festival)"] > 0
    assert not any("deflategate" in t.lower() or "coachella" in t.lower() for t in tweets.texts)
    assert not any(re.search(r"@\w", t) for t in tweets.texts)


def test_mix_never_trains_on_an_evaluation_text():
    """Each source's own test split and the held-out UCI sets stay out of training and
    validation, and every source contributes both classes."""
    from training import mix

    m = mix.build_mix(mix.DEFAULT_SOURCES, seed=7, val_cap=50)
    evaluation = {t for s in m.tests.values() for t in s.texts}
    assert not evaluation & (set(m.train.texts) | set(m.validation.texts))
    titles = {"clothing-titles-test"}  # the clothing source's second test part
    assert set(m.tests) == {mix.test_name(n) for n in mix.DEFAULT_SOURCES} | titles | set(mix.HELD_OUT)
    for name, part in m.parts.items():
        classes = set(part["train"].labels)
        assert classes == {0, 1}, name
    assert len(m.parts["imdb"]["train"]) == mix.SOURCES["imdb"].train_cap
    assert m.parts["tweets"]["train"].labels.count(0) <= 2 * m.parts["tweets"]["train"].labels.count(1)


def test_clothing_is_split_by_product_with_stars_as_labels():
    """No product is in two parts; 4-5 stars positive, 1-2 negative, 3 dropped and counted; titles
    are examples of their own and the titles' test part is scored apart."""
    from training import clothing

    reviews, report = clothing.load_reviews()
    assert report.bad["3 stars (mixed), dropped"] > 2000
    parts = clothing.split_by_product(reviews, seed=42)
    products = {name: {r.product for r in rs} for name, rs in parts.items()}
    assert not products["train"] & products["test"] and not products["train"] & products["validation"]
    assert not products["test"] & products["validation"]
    assert 0.08 < len(parts["test"]) / len(reviews) < 0.12
    splits = clothing.splits(42)
    test_texts = {r.text for r in parts["test"]}
    assert set(splits["test"].texts) <= test_texts and set(splits["test-titles"].texts) <= {
        r.title for r in parts["test"]
    }
    assert {0, 1} == set(splits["test"].labels) == set(splits["test-titles"].labels)
    assert clothing.star_label(5) == clothing.star_label(4) == 1 and clothing.star_label(2) == 0
    assert clothing.star_label(3) is None


def test_fine_foods_negatives_are_only_reviews_below_5_stars_that_v1_reads_as_negative():
    """The pseudo-labelled negatives come from the 1-4 star rows alone, each at or above the
    labeller's threshold; every 5-star review stays positive; the rest are counted as left out."""
    from training import pseudo_labels

    stars = datasets.load_fine_foods("train")
    labelled = datasets.load_fine_foods_sentiment("train")
    below_5 = {t for t, y in zip(stars.texts, stars.labels, strict=True) if y == 0}
    negatives = [t for t, y in zip(labelled.texts, labelled.labels, strict=True) if y == 0]
    positives = [t for t, y in zip(labelled.texts, labelled.labels, strict=True) if y == 1]
    assert positives == [t for t, y in zip(stars.texts, stars.labels, strict=True) if y == 1]
    assert negatives and set(negatives) <= below_5
    assert min(pseudo_labels.negative_probabilities(negatives)) >= pseudo_labels.NEGATIVE_THRESHOLD
    left_out = labelled.report.bad["1-4 stars, not clearly negative to the labeller"]
    assert left_out == stars.labels.count(0) - len(negatives) > 0


def test_make_train_reproduces_the_released_model():
    """`make train` (its recipe plus the default TRAIN_ARGS) runs what the released model's
    training_info.json records: every recorded argument and the data spec. Compared with the
    recorded values, not the recorded command re-parsed: a default that changed since (the mix's
    sources gained clothing after v2) changes what the command means, not what the run used."""
    from review_sentiment.paths import RELEASED_MODEL, REPO
    from training import train

    makefile = (REPO / "Makefile").read_text()
    defaults = re.search(r"^TRAIN_ARGS \?= (.*)$", makefile, re.M).group(1).split()
    recipe = re.search(r"\$\(CLI\) train (.*) \$\(TRAIN_ARGS\)", makefile).group(1).split()
    info = json.loads((RELEASED_MODEL / "training_info.json").read_text())
    made = train.parse_args(recipe + defaults)
    used = {k: str(v) if isinstance(v, Path) else v for k, v in vars(made).items() if k in info["args"]}
    assert used == info["args"]
    assert train.data_spec(made) == info["data_spec"]
    if "teacher_labels" not in info["args"]:  # arguments added since the release are off
        assert made.teacher_labels is None


def test_the_training_record_of_a_distilled_run_is_json(tmp_path):
    """A run with --teacher-labels (a Path) records its arguments in training_info.json: the
    first v3 run lost its record to `Object of type PosixPath is not JSON serializable`."""
    from types import SimpleNamespace

    from training import train

    args = train.parse_args(["--teacher-labels", str(tmp_path / "labels.npz"), "--output-dir", str(tmp_path)])
    trainer = SimpleNamespace(
        args=SimpleNamespace(bf16=False),
        state=SimpleNamespace(best_model_checkpoint=None, best_metric=None, log_history=[]),
    )
    run = {"temperature": 1.0, "train_size": 0, "resumed_from": None, "seconds": 0, "sections": [], "loads": []}
    record = json.loads(json.dumps(train.training_record(args, ["--teacher-labels", "x"], trainer, run)))
    assert record["args"]["teacher_labels"] == str(tmp_path / "labels.npz")
    again = train.parse_args(["--teacher-labels", record["args"]["teacher_labels"]])
    assert again.teacher_labels == args.teacher_labels
