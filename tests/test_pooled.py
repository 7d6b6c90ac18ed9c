"""The pooled-head model (`sentiment-accurate`'s layout: encoder, mean pooling, head) behind the
same core as the DistilBERT: predictions, the prompt, calibration, explanations, precisions."""

from __future__ import annotations

import pytest
import torch

from review_sentiment.core.classifier import SentimentClassifier
from review_sentiment.core.pooled import PooledClassifier, mean_pool
from review_sentiment.core.settings import InferenceSettings
from training.tiny_model import make_tiny_pooled_checkpoint


@pytest.fixture(scope="module")
def pooled_checkpoint(tmp_path_factory):
    return make_tiny_pooled_checkpoint(tmp_path_factory.mktemp("pooled"))


def test_mean_pool_leaves_padding_out():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert mean_pool(hidden, mask).tolist() == [[2.0, 3.0]]


def test_core_serves_a_pooled_checkpoint_with_its_prompt_and_temperature(pooled_checkpoint):
    classifier = SentimentClassifier.load(
        pooled_checkpoint, InferenceSettings(warmup=False, explain=False, cpu_precision="fp32")
    )
    assert classifier.prompt == "task: sentiment | query: "
    assert classifier.temperature == 1.5
    [prediction] = classifier.predict(["Five stars."])
    # By hand: the prompt after [CLS], mean pooling of the last and the first layer, the head.
    model: PooledClassifier = classifier.model
    tokenizer = classifier.tokenizer
    ids = tokenizer("task: sentiment | query: Five stars.", return_tensors="pt")
    with torch.no_grad():
        out = model.encoder(**ids, output_hidden_states=True)
        features = torch.cat(
            [
                mean_pool(out.last_hidden_state, ids["attention_mask"]),
                mean_pool(out.hidden_states[1], ids["attention_mask"]),
            ],
            -1,
        )
        expected = torch.softmax(model.head(features) / 1.5, -1)[0]
    assert prediction.probabilities["positive"] == pytest.approx(float(expected[1]), abs=1e-5)


def test_pooled_explanations_score_only_the_review_words(pooled_checkpoint):
    classifier = SentimentClassifier.load(pooled_checkpoint, InferenceSettings(warmup=False, explain_steps=8))
    [explanation] = classifier.explain(["Battery lasts two days"])
    assert [a.word for a in explanation.attributions] == ["Battery", "lasts", "two", "days"]
    # Completeness: the words' scores add up to f(input) - f(baseline), up to the integral's error.
    gap = explanation.log_odds - explanation.baseline_log_odds
    assert abs(explanation.convergence_delta) <= 0.1 * max(1.0, abs(gap))


def test_int8_is_refused_for_a_pooled_checkpoint(pooled_checkpoint):
    with pytest.raises(ValueError, match="int8"):
        SentimentClassifier.load(pooled_checkpoint, InferenceSettings(warmup=False, cpu_precision="int8"))
