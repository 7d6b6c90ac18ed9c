"""Evaluation: metrics on hand-computable cases, the baseline, and one small end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.baseline import baseline_probabilities, fit_baseline
from training.data import LabelledSet, LoadReport
from training.metrics import (
    ECE_BINS,
    classification_metrics,
    confidences,
    expected_calibration_error,
    predicted_labels,
    reliability,
    roc_auc,
)
from training.tiny_model import make_tiny_checkpoint

# --- metrics ----------------------------------------------------------------------------


def test_perfect_classifier():
    m = classification_metrics([0, 0, 1, 1], [0.1, 0.2, 0.9, 0.8])
    assert m["n"] == 4
    assert m["accuracy"] == 1.0 and m["macro_f1"] == 1.0 and m["roc_auc"] == 1.0
    assert m["confusion_matrix"] == {"labels": ["negative", "positive"], "matrix": [[2, 0], [0, 2]]}
    for cls in ("negative", "positive"):
        assert m["per_class"][cls] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 2}


def test_known_confusion_matrix():
    # TN=3, FP=1, FN=2, TP=2.
    labels = [0, 0, 0, 0, 1, 1, 1, 1]
    probs = [0.1, 0.2, 0.3, 0.7, 0.4, 0.45, 0.6, 0.9]
    m = classification_metrics(labels, probs)
    assert m["confusion_matrix"]["matrix"] == [[3, 1], [2, 2]]
    assert m["accuracy"] == pytest.approx(5 / 8)
    pos, neg = m["per_class"]["positive"], m["per_class"]["negative"]
    assert (pos["precision"], pos["recall"], pos["f1"]) == pytest.approx((2 / 3, 1 / 2, 4 / 7))
    assert (neg["precision"], neg["recall"], neg["f1"]) == pytest.approx((3 / 5, 3 / 4, 2 / 3))
    assert m["macro_f1"] == pytest.approx((4 / 7 + 2 / 3) / 2)
    # Positive scores {0.4, 0.45, 0.6, 0.9} beat negative ones {0.1, 0.2, 0.3, 0.7} in 13 of 16 pairs.
    assert m["roc_auc"] == pytest.approx(13 / 16)
    assert m["brier"] == pytest.approx(np.mean(np.square(np.array(probs) - labels)))


def test_half_is_negative_and_confidence_is_of_the_predicted_label():
    assert predicted_labels([0.5, 0.51, 0.2]).tolist() == [0, 1, 0]
    assert confidences([0.5, 0.9, 0.2]).tolist() == pytest.approx([0.5, 0.9, 0.8])


def test_ece_zero_when_perfectly_calibrated():
    # Confidence 0.9 with 9 of 10 right, and confidence 0.75 (p=0.25, says negative) with 3 of 4 right.
    labels = [1] * 9 + [0] + [0] * 3 + [1]
    probs = [0.9] * 10 + [0.25] * 4
    assert expected_calibration_error(labels, probs) == pytest.approx(0.0, abs=1e-12)


def test_ece_of_an_overconfident_classifier():
    # Confidence 0.95 but 6 of 10 right (gap 0.35); confidence 0.9 (p=0.1) but 5 of 10 right (gap 0.4).
    labels = [1] * 6 + [0] * 4 + [0] * 5 + [1] * 5
    probs = [0.95] * 10 + [0.1] * 10
    assert expected_calibration_error(labels, probs) == pytest.approx((10 * 0.35 + 10 * 0.4) / 20)
    assert expected_calibration_error([1, 0] * 5, [0.99] * 10) == pytest.approx(0.49)


def test_reliability_bins():
    labels = [1] * 6 + [0] * 4 + [0] * 5 + [1] * 5
    probs = [0.95] * 10 + [0.1] * 10
    bins = reliability(labels, probs)
    assert len(bins) == ECE_BINS
    assert bins[0]["lower"] == 0.0 and bins[-1]["upper"] == 1.0
    assert sum(b["count"] for b in bins) == 20
    full = [b for b in bins if b["count"]]
    assert [(b["count"], b["confidence"], b["accuracy"]) for b in full] == [
        (10, pytest.approx(0.9), pytest.approx(0.5)),
        (10, pytest.approx(0.95), pytest.approx(0.6)),
    ]
    assert all(b["confidence"] is None and b["accuracy"] is None for b in bins if not b["count"])
    assert all(b["lower"] < b["confidence"] <= b["upper"] for b in full)


def test_auc_undefined_for_one_class_and_output_is_json():
    assert roc_auc([1, 1, 1], [0.2, 0.6, 0.9]) is None
    m = classification_metrics([1, 1, 1], [0.2, 0.6, 0.9])
    assert m["roc_auc"] is None
    assert json.loads(json.dumps(m)) == m


@pytest.mark.parametrize(
    ("labels", "probs"),
    [([0, 1], [0.5]), ([], []), ([0, 2], [0.1, 0.9]), ([0, 1], [0.1, 1.2])],
)
def test_bad_inputs_are_refused(labels, probs):
    with pytest.raises(ValueError):
        classification_metrics(labels, probs)


# --- baseline ---------------------------------------------------------------------------


def test_baseline_learns_obvious_words():
    texts = ["a great film, loved it", "great acting and loved the story", "awful film, hated it", "hated it, awful"]
    train = LabelledSet("toy", texts * 3, [1, 1, 0, 0] * 3, LoadReport("toy"))
    probs = baseline_probabilities(fit_baseline(train), ["loved it, great", "awful, hated it"])
    assert probs.shape == (2,)
    assert probs[0] > 0.5 > probs[1]


# --- end to end -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    """A tiny random DistilBERT (tests.helpers) with a made-up training log for the curves."""
    path = make_tiny_checkpoint(tmp_path_factory.mktemp("tiny") / "model")
    log = [
        {"loss": 0.69, "step": 1},
        {"loss": 0.6, "step": 2},
        {"eval_loss": 0.62, "eval_accuracy": 0.6, "step": 2},
        {"train_runtime": 1.0, "step": 2},
    ]
    (path / "training_info.json").write_text(json.dumps({"args": {"max_length": 128}, "log_history": log}))
    return path


def test_evaluate_writes_every_report(tiny_model, tmp_path):
    import torch

    from training.evaluate import evaluate

    out = tmp_path / "report"
    threads = torch.get_num_threads()
    result = evaluate(
        tiny_model, out, max_length=64, limit=40, batch_size=16, threads=1, compare=tiny_model, labels=("new", "old")
    )
    assert torch.get_num_threads() == threads  # the caller's setting is restored

    for name in ("metrics.json", "report.md", "reliability.png", "curves.png"):
        assert (out / name).stat().st_size > 0, name
    saved = json.loads((out / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(result))
    # No data_spec recorded (a v1-era checkpoint): IMDB with seed 42, as v1 was trained.
    assert saved["data_spec"] == {"kind": "imdb", "seed": 42, "balance": False}
    assert set(saved["sets"]) == {"imdb-test", "uci-amazon", "uci-yelp", "fine-foods-5star-test"}
    assert saved["systems"] == {"model": "new", "compare": "old", "baseline": "TF-IDF + LR"}
    for name, s in saved["sets"].items():
        assert s["size"] == 40 == s["model"]["n"] == s["baseline"]["n"], name
        # The same checkpoint compared with itself scores the same; the buckets add up to the whole.
        assert s["compare"]["accuracy"] == s["model"]["accuracy"]
        by_length = s["by_length"]["model"]
        assert sum(b["n"] for b in by_length.values()) == 40
        assert sum(b["correct"] for b in by_length.values()) / 40 == pytest.approx(s["model"]["accuracy"])
        # Each figure agrees with the set's own confusion matrix (rows: true label, columns: predicted).
        for system in ("model", "compare", "baseline"):
            matrix = s[system]["confusion_matrix"]["matrix"]
            assert sum(map(sum, matrix)) == 40, (name, system)
            correct = matrix[0][0] + matrix[1][1]
            assert s[system]["accuracy"] == pytest.approx(correct / 40), (name, system)
    assert saved["by_length"]["model"]["<=100"]["n"] == sum(
        s["by_length"]["model"]["<=100"]["n"] for s in saved["sets"].values()
    )
    assert "great (5 stars) vs the rest" in saved["sets"]["fine-foods-5star-test"]["description"]
    assert saved["max_length"] == 64 and saved["limit"] == 40 and saved["temperature"] == 1.0
    assert Path(saved["model"]).resolve() == tiny_model.resolve()
    assert {"torch", "transformers", "cpu"} <= set(saved["environment"])
    assert saved["size"]["model"]["parameters"] > 0 and saved["size"]["model"]["safetensors_mb"] > 0
    for system in ("model", "compare", "baseline"):
        assert set(saved["speed"][system]) == {"batch_1_ms_per_review", "batch_32_ms_per_review"}
    assert saved["baseline"]["train_size"] == 40
    assert saved["training"]["max_length"] == 128

    report = (out / "report.md").read_text()
    assert all(name in report for name in saved["sets"])
    assert "great (5 stars) vs the rest" in report and "ECE" in report and "Size and speed" in report
    assert "<=100 chars" in report and "| all sets |" in report and "| old |" in report


def _csv_args(tmp_path, extra: list[str]):
    """training.train's arguments for a 300-row user CSV, 2/3 of it positive."""
    from training import train

    rows = [[f"review number {i} {'good' if i % 3 else 'bad'}", int(i % 3 != 0)] for i in range(300)]
    path = tmp_path / "user.csv"
    with path.open("w", encoding="utf-8") as fh:
        fh.write("text,label\n" + "".join(f"{t},{y}\n" for t, y in rows))
    return train.parse_args(["--data", str(path), *extra])


@pytest.mark.parametrize("extra", [[], ["--seed", "7", "--balance"]])
def test_evaluation_scores_only_what_training_held_out(tmp_path, extra):
    """The spec training.train records is what training.evaluate splits by: with a non-default
    seed and balance too, the scored test split shares no row with the training rows, and a
    user CSV's own test split is among the scored sets."""
    from training import train
    from training.eval_sets import data_spec, held_out_sets

    args = _csv_args(tmp_path, extra)
    spec = data_spec({"data_spec": train.data_spec(args)})
    trained, validation, _, _ = train.training_data(args)
    baseline_train, sets = held_out_sets(spec)
    assert "user-test" in sets and set(mix_held_out()) <= set(sets)
    test = set(sets["user-test"].texts)
    assert len(test) == (30 if not extra else 20)  # 10% of 300, or of the 200 left after balancing
    assert not test & (set(trained.texts) | set(validation.texts))
    assert set(baseline_train.texts) == set(trained.texts)
    if extra:
        default_test = set(
            held_out_sets(data_spec({"data_spec": train.data_spec(_csv_args(tmp_path, []))}))[1]["user-test"].texts
        )
        assert test != default_test  # the seed recorded is the seed used


def mix_held_out():
    from training.mix import HELD_OUT

    return HELD_OUT


def test_v1_era_checkpoints_get_their_split_from_the_recorded_args():
    from training.eval_sets import data_spec

    assert data_spec({"args": {"data": "imdb", "seed": 5, "balance": True}}) == {
        "kind": "imdb",
        "seed": 5,
        "balance": True,
    }
    assert data_spec(None)["seed"] == 42


def test_release_rule():
    """v3's rule: +1.5 points on average over UCI Amazon, UCI Yelp and the clothing reviews, no
    set down by more than 1 point, IMDB at least 90%."""
    from training.release import MIN_IMDB, decide

    def result(new: float, old: float, imdb: float, drugs: float = 0.75) -> dict:
        products = ("uci-amazon", "uci-yelp", "clothing-reviews-test")
        sets = {n: {"model": {"accuracy": new}, "compare": {"accuracy": old}} for n in products}
        sets["imdb-test"] = {"model": {"accuracy": imdb}, "compare": {"accuracy": imdb}}
        sets["drugs-test"] = {"model": {"accuracy": drugs}, "compare": {"accuracy": 0.75}}
        return {"sets": sets}

    assert decide(result(0.915, 0.90, MIN_IMDB))["release"] is True
    assert decide(result(0.914, 0.90, 0.95))["release"] is False  # +1.4 points is not enough
    assert decide(result(0.95, 0.90, MIN_IMDB - 0.001))["release"] is False  # IMDB fell too far
    decision = decide(result(0.95, 0.90, 0.95, drugs=0.739))  # drugs.com lost 1.1 points
    assert decision["release"] is False and decision["largest_drop"]["set"] == "drugs-test"


def test_length_buckets():
    from training.scoring import accuracy_by_length, bucket_of

    assert [bucket_of("x" * n) for n in (1, 100, 101, 400, 401)] == ["<=100", "<=100", "101-400", "101-400", ">400"]
    out = accuracy_by_length(["a" * 50, "b" * 50, "c" * 500], [1, 0, 1], [0.9, 0.8, 0.2])
    assert out["<=100"] == {"n": 2, "correct": 1, "accuracy": 0.5}
    assert out["101-400"] == {"n": 0, "correct": 0, "accuracy": None}
    assert out[">400"] == {"n": 1, "correct": 0, "accuracy": 0.0}


def test_missing_training_log_is_skipped(tmp_path):
    from training.eval_report import plot_curves
    from training.eval_sets import training_info
    from training.evaluate import training_summary

    assert training_info(tmp_path) is None and training_summary(None) is None
    assert plot_curves([{"train_runtime": 1.0, "step": 3}], tmp_path / "curves.png") is False
    assert not (tmp_path / "curves.png").exists()


def test_a_release_is_named_after_the_one_it_replaces(tmp_path):
    """release() names the new model v<N+1> in RELEASE: its version in TorchServe."""
    from review_sentiment.paths import RELEASED_MODEL
    from review_sentiment.serve.versions import RELEASE_FILE, release_version
    from training.release import next_release

    assert next_release(tmp_path) == "v1"
    (tmp_path / RELEASE_FILE).write_text("v2\n")
    assert next_release(tmp_path) == "v3"
    assert release_version(RELEASED_MODEL) == "v2"


def test_a_release_replaces_the_licence_notices_with_the_new_models(tmp_path):
    """v3 (distilled from Gemma) brings GEMMA_NOTICE.md; a later model without it takes it away."""
    from training.release import copy_notices

    source, target = tmp_path / "new", tmp_path / "released"
    source.mkdir(), target.mkdir()
    (source / "GEMMA_NOTICE.md").write_text("gemma")
    copy_notices(source, target)
    assert (target / "GEMMA_NOTICE.md").read_text() == "gemma"
    (source / "GEMMA_NOTICE.md").unlink()
    copy_notices(source, target)
    assert not (target / "GEMMA_NOTICE.md").exists()
