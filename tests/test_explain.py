"""Word attributions (Integrated Gradients): completeness, sensible words with the released
model, exact character offsets, truncation, batching in order, the handler's per-request
routing, and /explanations through a real TorchServe (alone, concurrent, mixed with
/predictions, a bad request failing alone)."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import torch
from transformers import AutoModelForSequenceClassification

from handler.sentiment_handler import SentimentHandler
from review_sentiment.client.rest import ApiError, TorchServeClient
from review_sentiment.core.classifier import Prediction, SentimentClassifier
from review_sentiment.core.encoding import token_ids
from review_sentiment.core.errors import ExplainBusy, ExplanationsOff
from review_sentiment.core.explain import (
    METHOD,
    Explanation,
    WordExplainer,
    encode_with_spans,
    gauss_legendre,
)
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.endpoints import Endpoints
from review_sentiment.paths import RELEASED_MODEL
from review_sentiment.status_codes import http_status
from tests.helpers import ANSWERED_BY, check_prediction, handler_context, histogram, start_batch

EXPLANATION_KEYS = {
    "label",
    "score",
    "probabilities",
    "attributions",
    "method",
    "steps",
    "log_odds",
    "baseline_log_odds",
    "convergence_delta",
    "truncated",
    "omitted",
}
# Spaces of several kinds, accents, an emoji, CJK, punctuation glued to words, upper case.
AWKWARD = "Très  bon!!\tJ'adore 😀 the smell…\nbut  NOT the price (€49). 很好 ok-ish"


# Where time is not the point: a loaded CI machine must not turn explanations into 503 ExplainBusy.
NO_BUDGET = 1e9


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint) -> SentimentClassifier:
    return SentimentClassifier.load(
        tiny_checkpoint, InferenceSettings(max_length=64, warmup=False, explain_budget_s=NO_BUDGET)
    )


@pytest.fixture(scope="module")
def released() -> SentimentClassifier:
    """The released model as the server runs it (cpu_precision auto), explained in fp32."""
    return SentimentClassifier.load(RELEASED_MODEL, InferenceSettings(explain_budget_s=NO_BUDGET))


def check_explanation(body: dict, text: str) -> None:
    assert set(body) - ANSWERED_BY == EXPLANATION_KEYS
    check_prediction({k: body[k] for k in ("label", "score", "probabilities")})
    assert body["method"] == METHOD and body["steps"] >= 1
    for item in body["attributions"]:
        assert text[item["start"] : item["end"]] == item["word"]
    if not body["truncated"]:
        assert [a["word"] for a in body["attributions"]] == text.split()


# The method --------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 4, 32])
def test_gauss_legendre_integrates_polynomials_of_degree_below_2n_exactly(n):
    nodes, weights = gauss_legendre(n)
    assert len(nodes) == n and bool(((nodes > 0) & (nodes < 1)).all())
    for degree in range(2 * n):
        assert float((weights * nodes**degree).sum()) == pytest.approx(1 / (degree + 1), abs=1e-12)


def steep_tiny_model(checkpoint) -> torch.nn.Module:
    """The tiny random model in float64, its Linear layers scaled up: at random init the output
    hardly depends on the text and is almost linear along the path, which tests nothing."""
    model = AutoModelForSequenceClassification.from_pretrained(checkpoint, dtype=torch.float64)
    with torch.no_grad():
        for name, module in model.named_modules():
            if isinstance(module, torch.nn.Linear):
                module.weight.mul_(10 if name in ("pre_classifier", "classifier") else 5)
    return model


def test_completeness_on_a_tiny_model_in_float64(tiny_checkpoint, tiny):
    """Word scores sum to f(input) - f(baseline) of the label's log-odds, for either label:
    with 256 steps in float64 |delta| <= 0.2 % of the gain. One step (the gradient at the
    midpoint) misses by far more, so the test does see a curved path."""
    model = steep_tiny_model(tiny_checkpoint)
    texts = ["I love this colour, it is perfect!", "Terrible. It broke after two days and nobody answered."]
    one_step_misses = []
    for label in tiny.labels:
        predictions = [Prediction(label, 0.5, {}) for _ in texts]  # completeness holds for any label
        for steps in (256, 1):
            explainer = WordExplainer(model, tiny.tokenizer, InferenceSettings(max_length=64, explain_steps=steps))
            explanations = explainer.explain(texts, predictions, tiny.labels).outcomes
            for text, explanation in zip(texts, explanations, strict=True):
                gain = explanation.log_odds - explanation.baseline_log_odds
                total = sum(a.score for a in explanation.attributions)
                assert explanation.convergence_delta == pytest.approx(total - gain, abs=1e-12)
                if steps == 1:
                    one_step_misses.append(abs(total - gain) / abs(gain))
                    continue
                assert abs(gain) > 0.05, "the test model is too flat to test anything"
                assert abs(total - gain) <= 2e-3 * abs(gain), (text, label, total, gain)
                # f(input) is the model's own log-odds for the text, computed the ordinary way.
                logits = model(input_ids=torch.tensor(token_ids(tiny.tokenizer, [text], 64))).logits[0]
                target = tiny.labels.index(label)
                assert explanation.log_odds == pytest.approx(float(logits[target] - logits[1 - target]), abs=1e-9)
    assert max(one_step_misses) > 0.05


def test_completeness_of_the_released_model_at_the_default_steps(released):
    """What the server reports: fp32, 32 steps. Measured here |delta| <= 0.17 log-odds on gains
    of 3 to 6 (<= 3 %); the test allows 5 % of the gain plus 0.02."""
    texts = [
        "I'm disappointed. It does make my face look fresh, but doesn't remove blackheads.",
        "The packaging was fine but the cream itself is terrible.",
        "Excellent quality and wonderful colour, highly recommended.",
    ]
    for explanation in released.explain(texts):
        gain = explanation.log_odds - explanation.baseline_log_odds
        assert explanation.steps == InferenceSettings().explain_steps == 32
        assert abs(explanation.convergence_delta) <= 0.05 * abs(gain) + 0.02, explanation


def test_top_words_of_clear_reviews_make_sense(released):
    """Scores are contributions to the predicted label's log-odds: > 0 supports the label."""
    terrible, love, awful, fine_but = released.explain(
        [
            "This product is terrible. The cap broke on the first day.",
            "I love this moisturiser, my skin feels soft.",
            "Awful smell, waste of money.",
            "The packaging was fine but the cream itself is terrible.",
        ]
    )

    def top(explanation, n=1):
        return [a.word for a in sorted(explanation.attributions, key=lambda a: -a.score)[:n]]

    assert terrible.prediction.label == "negative" and top(terrible) == ["terrible."]
    assert love.prediction.label == "positive" and top(love) == ["love"]
    assert awful.prediction.label == "negative" and set(top(awful, 2)) == {"Awful", "waste"}
    assert fine_but.prediction.label == "negative" and top(fine_but) == ["terrible."]
    fine = next(a for a in fine_but.attributions if a.word == "fine")
    assert fine.score < 0  # "fine" argues against the negative verdict


def test_explanations_carry_the_served_prediction_and_run_in_fp32(released):
    text = "Smells lovely but feels greasy"
    explanation = released.explain([text])[0]
    assert explanation.prediction == released.predict([text])[0]  # same answer as /predictions
    explainer_model = released.explainer.gradients.model
    assert next(explainer_model.parameters()).dtype == torch.float32
    if next(released.model.parameters()).dtype != torch.float32:  # bf16 server: a separate fp32 copy
        assert explainer_model is not released.model


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_a_reduced_precision_server_explains_with_a_separate_fp32_copy(tiny_checkpoint, precision):
    """On every machine (the test above checks the copy only where `auto` picks bf16). int8
    serves from ONNX Runtime and explains with the fp32 torch model it was exported from."""
    clf = SentimentClassifier.load(tiny_checkpoint, InferenceSettings(cpu_precision=precision, warmup=False))
    explainer_model = clf.explainer.gradients.model
    assert explainer_model is not clf.model
    assert {p.dtype for p in explainer_model.parameters()} == {torch.float32}
    if precision == "bf16":
        assert next(clf.model.parameters()).dtype == torch.bfloat16
    explanation = clf.explain(["Smells lovely but feels greasy"])[0]
    assert explanation.prediction == clf.predict(["Smells lovely but feels greasy"])[0]


def test_fp32_server_shares_its_weights_with_the_explainer(tiny_checkpoint):
    clf = SentimentClassifier.load(tiny_checkpoint, InferenceSettings(cpu_precision="fp32", warmup=False))
    assert clf.explainer.gradients.model is clf.model


def test_offsets_map_exactly_into_the_original_text(tiny):
    explanation = tiny.explain([AWKWARD])[0]
    check_explanation(explanation.to_dict(), AWKWARD)
    assert explanation.omitted is None
    review = encode_with_spans(tiny.tokenizer, [AWKWARD], 64, 0.25)[0]
    words = [(a.start, a.end) for a in explanation.attributions]
    for span in review.spans:
        if span is not None:  # every WordPiece lies inside exactly one word
            assert sum(s <= span[0] and span[1] <= e for s, e in words) == 1, span


def test_truncated_reviews_say_what_was_left_out(tiny):
    """Head + tail truncation as for predictions: the words the model never saw get no score."""
    text = "Opening words here. " + " ".join(f"middle{i}" for i in range(80)) + " Final verdict: returned it."
    review = encode_with_spans(tiny.tokenizer, [text], 16, 0.25)[0]
    assert review.ids == token_ids(tiny.tokenizer, [text], 16, 0.25)[0]  # the exact ids predictions use
    settings = InferenceSettings(max_length=16, explain_steps=8)
    explainer = WordExplainer(tiny.explainer.gradients.model, tiny.tokenizer, settings)
    clf = SentimentClassifier(tiny.model, tiny.tokenizer, settings, tiny.device, explainer)
    body = clf.explain([text])[0].to_dict()
    check_explanation(body, text)
    assert body["truncated"] is True
    start, end = body["omitted"]
    assert text[:start].startswith("Opening") and text[end:].endswith("returned it.")
    words = [a["word"] for a in body["attributions"]]
    assert words[0] == "Opening" and words[-1] == "it."
    assert not any(start <= a["start"] and a["end"] <= end for a in body["attributions"])


def test_a_batch_is_explained_in_order_and_chunking_changes_nothing(tiny):
    texts = [AWKWARD, "short", "A much longer review " * 6 + "that goes on.", "Broke in a week."]
    together = tiny.explain(texts)
    settings = InferenceSettings(
        max_length=64, explain_chunk_tokens=40, explain_budget_s=NO_BUDGET
    )  # many chunks, one review per group
    small_chunks = WordExplainer(tiny.explainer.gradients.model, tiny.tokenizer, settings)
    chunked = small_chunks.explain(texts, [e.prediction for e in together], tiny.labels).outcomes
    for text, a, b in zip(texts, together, chunked, strict=True):
        alone = tiny.explain([text])[0]
        assert [w.word for w in a.attributions] == text.split()
        for x, y, z in zip(a.attributions, b.attributions, alone.attributions, strict=True):
            assert x.score == pytest.approx(y.score, abs=1e-5) == pytest.approx(z.score, abs=1e-5)


def test_a_spent_time_budget_refuses_the_rest_of_the_batch_with_503(tiny):
    """Past explain_budget_s the remaining explanations of the batch fail alone with 503 (the
    first group always runs); predictions in the same batch are answered."""
    settings = InferenceSettings(max_length=64, explain_chunk_tokens=40, explain_budget_s=1e-9)
    clf = SentimentClassifier(
        tiny.model,
        tiny.tokenizer,
        settings,
        tiny.device,
        WordExplainer(tiny.explainer.gradients.model, tiny.tokenizer, settings),
    )
    outcomes, stats = clf.classify(["first", "second", "a prediction", "third"], explain=[True, True, False, True])
    assert isinstance(outcomes[0], Explanation) and isinstance(outcomes[2], Prediction)
    for busy in (outcomes[1], outcomes[3]):
        assert isinstance(busy, ExplainBusy) and http_status(busy.kind) == 503
    assert stats.size == 4 and stats.explained == 3


def test_explanations_off_refuses_explanations_alone(tiny_checkpoint):
    clf = SentimentClassifier.load(tiny_checkpoint, InferenceSettings(explain=False, warmup=False))
    assert clf.explainer is None
    outcomes, _ = clf.classify(["explain me", "predict me", ""], explain=[True, False, True])
    assert isinstance(outcomes[0], ExplanationsOff) and http_status(outcomes[0].kind) == 501
    assert isinstance(outcomes[1], Prediction)
    assert outcomes[2].kind == "EmptyText"  # bad input keeps its own error


def test_explain_settings_from_yaml_and_env():
    settings = InferenceSettings.from_sources({"explain_steps": 48}, {"SENTIMENT_EXPLAIN_CHUNK_TOKENS": "2048"})
    assert (settings.explain_steps, settings.explain_chunk_tokens, settings.explain) == (48, 2048, True)
    assert InferenceSettings.from_sources({}, {"SENTIMENT_EXPLAIN_BUDGET_S": "12.5"}).explain_budget_s == 12.5
    assert InferenceSettings.from_sources({}, {"SENTIMENT_EXPLAIN": "false"}).explain is False
    with pytest.raises(ValueError):
        InferenceSettings(explain_steps=0)


# The handler, with TorchServe's own Context ----------------------------------------------


@pytest.fixture(scope="module")
def handler_batch(model_dir):
    handler = SentimentHandler()
    handler.initialize(handler_context(model_dir, {"max_length": 64, "max_chars": 300, "explain_steps": 8}))

    def run(rows: list, explain: list[bool]):
        context = handler_context(model_dir)
        # As the frontend sends them: every request carries explain True or False.
        start_batch(context, [{"Content-Type": "text/plain", "explain": str(flag)} for flag in explain])
        return [json.loads(r) for r in handler.handle(rows, context)], context

    return run


@pytest.mark.parametrize("first_is_explanation", [True, False])
def test_handler_routes_each_request_of_a_mixed_batch(handler_batch, first_is_explanation):
    """BaseHandler decides by request 0 alone; this handler answers each request as it asked."""
    texts = ["Lovely scent", "Dried out my skin", "", "Would buy again", "y" * 301, "Meh"]
    explain = [first_is_explanation, not first_is_explanation, True, True, True, False]
    bodies, context = handler_batch([{"body": t} for t in texts], explain)
    codes = [context.get_response_status(i)[0] for i in range(len(texts))]
    assert codes == [200, 200, 400, 200, 413, 200]
    for text, flag, body, code in zip(texts, explain, bodies, codes, strict=True):
        if code != 200:
            assert set(body) == {"code", "type", "message"}
        elif flag:
            check_explanation(body, text)
        else:
            check_prediction(body)
    # Each answer is the one its text gets alone.
    alone, _ = handler_batch([{"body": texts[3]}], [True])
    assert alone[0]["attributions"] == bodies[3]["attributions"]
    from ts.metrics.metric_type_enum import MetricTypes

    for name in ("ExplanationsPerBatch", "ExplainTime", "BatchSize"):
        context.metrics.get_metric(name, MetricTypes.HISTOGRAM)  # raises if never recorded


# Through a real TorchServe ---------------------------------------------------------------


def send_all(client: TorchServeClient, jobs: list[tuple[str, str]]) -> list[tuple[int, dict]]:
    """(kind, text) jobs sent at the same instant; (status, body) back in the same order."""
    barrier = threading.Barrier(len(jobs))

    def send(job):
        kind, text = job
        barrier.wait()
        try:
            return 200, (client.explain(text) if kind == "explain" else client.predict(text))
        except ApiError as err:
            return err.status, err.body

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(send, jobs))


@pytest.mark.serving
def test_explanations_endpoint(client):
    text = "The shade is perfect and it lasts all day."
    body = client.explain(text)
    check_explanation(body, text)
    assert body["probabilities"] == pytest.approx(client.predict(text)["probabilities"])
    # JSON works on /explanations as on /predictions.
    response = client.request(
        "POST",
        "inference",
        "/explanations/sentiment",
        data=json.dumps({"text": text}),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 200 and response.json()["attributions"] == body["attributions"]


@pytest.mark.serving
def test_concurrent_explanations_are_batched_and_answered_in_order(client):
    before = histogram(client.metrics(), "ExplanationsPerBatch")
    texts = [f"Review {i}: {'love it, great value' if i % 2 else 'hate it, broke at once'} ({i})" for i in range(8)]
    results = send_all(client, [("explain", t) for t in texts])
    for text, (status, body) in zip(texts, results, strict=True):
        assert status == 200
        check_explanation(body, text)  # its own words: no answer went to another request
    after = histogram(client.metrics(), "ExplanationsPerBatch")
    assert after["sum"] - before.get("sum", 0) == len(texts)
    assert after["count"] - before.get("count", 0) < len(texts), "no batch held more than one explanation"


@pytest.mark.serving
def test_explanations_and_predictions_mixed_in_one_batch(client):
    """Predictions, explanations and a bad explanation sent together: each gets its own kind of
    answer. The burst is repeated until one batch provably held both kinds (a single batch for
    all of them); every round must be right."""
    jobs = [("explain", "Fell apart, avoid."), ("predict", "Lovely, will buy again")]
    jobs += [("explain", "Great colour but it smells odd"), ("explain", "   "), ("predict", "Dried my skin out")]
    jobs += [("predict", "Not worth the money"), ("explain", "Best mascara I ever had")]
    mixed_batches = 0
    for _ in range(4):
        before = histogram(client.metrics(), "BatchSize")
        results = send_all(client, jobs)
        for (kind, text), (status, body) in zip(jobs, results, strict=True):
            if not text.strip():
                assert status == 400 and body["type"] == "EmptyText"
            elif kind == "explain":
                assert status == 200
                check_explanation(body, text)
            else:
                assert status == 200
                check_prediction(body)  # exactly the prediction keys: predictions are unchanged
        after = histogram(client.metrics(), "BatchSize")
        mixed_batches += after["count"] - before.get("count", 0) == 1
        if mixed_batches:
            break
    assert mixed_batches, "the requests never shared a batch"


@pytest.mark.serving
def test_an_explain_header_sent_to_predictions_is_ignored(server, client):
    """The frontend sets the flag itself after the client's headers: /predictions stays a prediction."""
    endpoints = Endpoints.load(server.run_dir)
    headers = {**client.keys.headers("inference"), "explain": "True", "Content-Type": "text/plain"}
    response = requests.post(
        f"{endpoints.inference_url}/predictions/sentiment", data=b"nice", headers=headers, timeout=30
    )
    assert response.status_code == 200
    check_prediction(response.json())
