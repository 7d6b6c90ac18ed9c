"""The canary check of a rollout: does a newly registered version answer, and is it as accurate
as the version being served?

Two parts, both in canary.json beside this file:
- the fixed canary set: reviews of every shape the service takes (one word, emoji, other
  scripts, markup, a 6,000-character review, JSON-looking text), sent to both versions over
  REST and gRPC; the new version must answer every one (or refuse it exactly as the serving
  version does, e.g. over a lower max_chars), and name itself in each answer;
- a sample of the evaluation sets: 200 labelled sentences each from UCI Amazon and UCI Yelp,
  which no released model trained on (training/eval_sets.py), sent to both versions; the new
  version may not be less accurate than the serving one by more than the margin.

Redraw the sample (needs the data sets): python -m training.canary_sample
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from review_sentiment.client.many import Predicts, predict_many

CANARY_FILE = Path(__file__).with_name("canary.json")
# Accuracy the new version may lose against the serving one on the sample (2 points: twice the
# standard error of a paired difference on 400 sentences when the two versions disagree on 1 in 20).
DEFAULT_MARGIN = 0.02

Predict = Callable[[Sequence[str]], list[dict]]


@dataclass(frozen=True)
class CanaryData:
    canary: list[str]
    sample: list[tuple[str, str]]  # (text, label)

    @classmethod
    def load(cls, path: Path = CANARY_FILE) -> CanaryData:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(list(data["canary"]), [(row["text"], row["label"]) for row in data["sample"]])


@dataclass
class CanaryResult:
    failures: list[str] = field(default_factory=list)  # one line per failed request
    accuracy: dict[str, float] = field(default_factory=dict)  # by version

    @property
    def passed(self) -> bool:
        return not self.failures


def answer_problem(answer: dict, version: str, serving: dict | None = None) -> str | None:
    """Why `answer` fails the canary (None when it passes): it is no prediction by `version`,
    unless the serving version refused the same review with the same status (a setting such
    as max_chars, not the new version, refused it)."""
    if "error" in answer:
        code = answer["error"].get("code")
        if serving is not None and "error" in serving and serving["error"].get("code") == code and code:
            return None
        return f"HTTP {code}: {answer['error'].get('message') or answer['error'].get('type')}"
    if "label" not in answer:
        return f"an answer without a label: {sorted(answer)}"
    if answer.get("model_version") != version:
        return f"answered by version {answer.get('model_version')!r}, not {version!r}"
    return None


def failures(
    texts: Sequence[str], answers: Sequence[dict], version: str, how: str, serving: Sequence[dict] | None = None
) -> list[str]:
    out = []
    for i, answer in enumerate(answers):
        problem = answer_problem(answer, version, serving[i] if serving is not None else None)
        if problem:
            out.append(f"{how} canary review {i} ({len(texts[i])} chars): {problem}")
    return out


def accuracy(answers: Sequence[dict], labels: Sequence[str]) -> float:
    """Share of right labels; an unanswered review counts as wrong."""
    right = sum(answer.get("label") == label for answer, label in zip(answers, labels, strict=True))
    return right / max(1, len(labels))


def run_canary(
    new_version: str,
    serving_version: str,
    rest: Callable[[str], Predict],
    grpc: Callable[[str], Predict] | None = None,
    data: CanaryData | None = None,
) -> CanaryResult:
    """The canary set to both versions (REST, and gRPC when `grpc` is given), then the sample to
    both. `rest(version)` / `grpc(version)`: a function classifying texts with that version, one
    result dict per text (client/many.py's form)."""
    data = data or CanaryData.load()
    result = CanaryResult()
    for how, predict in (("REST", rest), ("gRPC", grpc)):
        if predict is not None:
            serving = predict(serving_version)(data.canary)
            result.failures += failures(data.canary, predict(new_version)(data.canary), new_version, how, serving)
    texts, labels = [t for t, _ in data.sample], [label for _, label in data.sample]
    for version in (serving_version, new_version):
        answers = rest(version)(texts)
        result.accuracy[version] = accuracy(answers, labels)
        if version == new_version:
            result.failures += failures(texts, answers, version, "REST sample")[:5]
    return result


def many(client: Predicts, concurrency: int = 8) -> Predict:
    """Texts classified through `client` (REST or gRPC) with `concurrency` requests in flight,
    one result per text in input order (client/many.py's form: a refusal is {"error": ...})."""
    return lambda texts: predict_many(client, texts, concurrency)


CANARY_SET = [
    "Love it!",
    "Terrible.",
    "ok",
    "The strap broke on day two and support never replied. Avoid.",
    "Gorgeous colour, lasts all day, and the price is fair. Would buy again.",
    "Not bad at all, honestly better than I expected.",
    "😍😍😍 best purchase this year",
    "Très bon produit, je recommande.",
    "とても良い商品です。",
    "<b>Great</b> <script>alert(1)</script> & fast shipping",
    '{"text": "this looks like JSON but is the review itself"}',
    "   leading and trailing spaces, tabs\tand\nnew lines   ",
    "It arrived late. " * 40 + "But it works perfectly and I love it.",
    (
        "I have combination skin and tried this for six weeks before writing. "
        "The first days it felt heavy, then the dry patches went and my make-up sat better. " * 40
    ).strip(),
]
