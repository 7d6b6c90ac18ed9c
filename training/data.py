"""Labelled review sets: loading, cleaning, bad-row accounting, deduplication and splits.

Every loader returns a `LabelledSet` whose `report` counts the rows it could not use and
why: bad rows are reported, never silently dropped.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sklearn.model_selection import train_test_split

from review_sentiment.tables import guess_text_column, read_table
from training import sources
from training.labels import LABEL2ID

_HTML_BREAK = re.compile(r"<br\s*/?>", re.IGNORECASE)
_SPACES = re.compile(r"[ \t\r\f\v]+")

# Label spellings accepted in CSV files, per label id.
POSITIVE = {"1", "1.0", "positive", "pos", "true", "yes", "recommended"}
NEGATIVE = {"0", "0.0", "negative", "neg", "false", "no", "not recommended"}
# Sephora's Kaggle review files, recognised without options (its text column, review_text, is
# among the reader's text-column guesses).
SEPHORA_LABEL, SEPHORA_RATING = "is_recommended", "rating"


@dataclass
class LoadReport:
    source: str
    rows: int = 0
    bad: Counter = field(default_factory=Counter)

    @property
    def kept(self) -> int:
        return self.rows - sum(self.bad.values())

    def to_dict(self) -> dict:
        return {"source": self.source, "rows": self.rows, "kept": self.kept, "bad": dict(self.bad)}


@dataclass
class LabelledSet:
    name: str
    texts: list[str]
    labels: list[int]
    report: LoadReport

    def __len__(self) -> int:
        return len(self.texts)

    def subset(self, indices: Iterable[int], name: str) -> LabelledSet:
        indices = list(indices)
        return LabelledSet(name, [self.texts[i] for i in indices], [self.labels[i] for i in indices], self.report)


def clean_text(text: str) -> str:
    """HTML line breaks (IMDB has them) to newlines, runs of spaces to one."""
    return _SPACES.sub(" ", _HTML_BREAK.sub("\n", text)).strip()


def _collect(name: str, rows: Iterable[tuple[object, object]], to_label, dropped: Counter | None = None) -> LabelledSet:
    """Build a set from (text, raw label) pairs, counting every row it cannot use; `dropped`:
    rows a loader already left out, by reason."""
    report = LoadReport(name, rows=sum((dropped or {}).values()), bad=Counter(dropped or {}))
    texts, labels = [], []
    for raw_text, raw_label in rows:
        report.rows += 1
        text = clean_text(raw_text) if isinstance(raw_text, str) else ""
        if not text:
            report.bad["empty text"] += 1
            continue
        label = to_label(raw_label)
        if label is None:
            report.bad["missing label" if raw_label in (None, "") else "unknown label"] += 1
            continue
        texts.append(text)
        labels.append(label)
    return LabelledSet(name, texts, labels, report)


def _label_from(raw: object, positive: set[str], negative: set[str]) -> int | None:
    value = str(raw).strip().lower() if raw is not None else ""
    if value in positive:
        return LABEL2ID["positive"]
    if value in negative:
        return LABEL2ID["negative"]
    return None


def _rating_label(raw: object, positive_min: float = 4, negative_max: float = 2) -> int | None:
    """Star ratings: >= 4 positive, <= 2 negative, 3 (mixed) unknown."""
    try:
        stars = float(str(raw))
    except ValueError:
        return None
    if stars >= positive_min:
        return LABEL2ID["positive"]
    if stars <= negative_max:
        return LABEL2ID["negative"]
    return None


def load_imdb() -> LabelledSet:
    """IMDB 50K movie reviews (Kaggle CSV; columns review, sentiment)."""
    reader = csv.DictReader(io.StringIO(sources.imdb_csv_bytes().decode("utf-8")))
    rows = ((row["review"], row["sentiment"]) for row in reader)
    return _collect("imdb", rows, lambda raw: _label_from(raw, POSITIVE, NEGATIVE))


def load_uci(name: str) -> LabelledSet:
    """UCI Amazon or Yelp labelled sentences (class 1 positive, 0 negative)."""
    records = sources.uci_records(name)
    rows = ((r.get("text"), r.get("class")) for r in records)
    return _collect(f"uci-{name}", rows, lambda raw: _label_from(raw, POSITIVE, NEGATIVE))


FINE_FOODS_PARTS = {"train": "training_data", "test": "testing_data"}  # the package's own split


def load_fine_foods(part: str | None = None) -> LabelledSet:
    """Amazon Fine Foods sample, its `part` ('train', 'test') or both (label: 5 stars vs the rest).

    This measures something narrower than sentiment: "great" is 5 stars; "other" mixes
    1-4 stars, so a happy 4-star review counts as negative here. The package keeps no star
    rating, so a 1-2 vs 4-5 stars sentiment label cannot be made from it.
    """
    frames = sources.fine_foods_frames()
    names = [FINE_FOODS_PARTS[part]] if part else list(FINE_FOODS_PARTS.values())
    rows = [
        (review, score)
        for name in names
        for review, score in zip(frames[name]["review"], frames[name]["score"], strict=True)
    ]
    suffix = f"-{part}" if part else ""
    return _collect(f"fine-foods-5star{suffix}", rows, lambda raw: {"great": 1, "other": 0}.get(str(raw)))


def load_fine_foods_sentiment(part: str = "train") -> LabelledSet:
    """Fine Foods reviews of `part` with a sentiment label: 5-star reviews positive, and the
    1-4 star ones that the v1 labeller reads as clearly negative (`training.pseudo_labels`)
    negative; the other 1-4 star reviews (a 4-star review is positive, a 2-star one negative,
    and the package does not say which) are left out."""
    from training import pseudo_labels

    stars = load_fine_foods(part)
    rest = [t for t, y in zip(stars.texts, stars.labels, strict=True) if y == 0]
    p_negative = dict(zip(rest, pseudo_labels.negative_probabilities(rest), strict=True))
    keep = [
        i
        for i, (t, y) in enumerate(zip(stars.texts, stars.labels, strict=True))
        if y == 1 or p_negative[t] >= pseudo_labels.NEGATIVE_THRESHOLD
    ]
    report = LoadReport(f"fine-foods-{part}", stars.report.rows, Counter(stars.report.bad))
    report.bad["1-4 stars, not clearly negative to the labeller"] += len(stars) - len(keep)
    return LabelledSet(report.source, [stars.texts[i] for i in keep], [stars.labels[i] for i in keep], report)


def load_rotten_tomatoes() -> LabelledSet:
    """Rotten Tomatoes critics' snippets, fresh positive and rotten negative; plot synopses left out."""
    reader = csv.DictReader(io.StringIO(sources.rotten_tomatoes_csv_bytes().decode("utf-8")))
    dropped: Counter = Counter()
    rows = []
    for row in reader:
        if row["category"] == "plot":
            dropped["plot synopsis, not a review"] += 1
        else:
            rows.append((row["text"], row["category"]))
    return _collect("rotten-tomatoes", rows, lambda raw: {"fresh": 1, "rotten": 0}.get(raw), dropped)


TWEET_MIN_CONFIDENCE = 0.6  # the annotators' agreement; below it the label is a coin toss
# Topics of the CrowdFlower sets that are not about products or services.
OFF_TOPIC = {
    "sports": ("deflategate", "nfl", "patriots", "brady", "super bowl", "superbowl", "football", "beastmode"),
    "festival": ("coachella", "#ultra", "festival", "lineup", "line-up"),
}
_HANDLE = re.compile(r"@\w+")
_URL = re.compile(r"https?://\S*|www\.\S+")
_RETWEET = re.compile(r"^(?:RT|MT)\b\s*:?\s*")


def clean_tweet(text: str) -> str:
    """Handles, links and the retweet marker out; HTML entities decoded; stray non-ASCII bytes
    (the file mixes encodings) dropped, and the underscores it put in their place."""
    text = _HANDLE.sub("", _URL.sub("", html.unescape(text).encode("ascii", "ignore").decode()))
    return clean_text(_RETWEET.sub("", text.replace("_", " ").strip(" :-"))).strip(" :-")


def load_tweets(min_confidence: float = TWEET_MIN_CONFIDENCE) -> LabelledSet:
    """CrowdFlower customer tweets (airlines, Apple, ...), positive and negative, confidently
    labelled, sports and festival topics left out."""
    text = sources.tweets_csv_bytes().decode("latin-1")  # not valid UTF-8: bytes as they are
    dropped: Counter = Counter()
    rows = []
    for row in csv.DictReader(io.StringIO(text)):
        lowered = row["text"].lower()
        topic = next((t for t, words in OFF_TOPIC.items() if any(w in lowered for w in words)), None)
        try:
            confidence = float(row["confidence"])
        except ValueError:
            confidence = None
        if row["sentiment"] not in ("positive", "negative"):
            dropped[f"{row['sentiment'] or 'no'} sentiment"] += 1
        elif topic:
            dropped[f"off topic ({topic})"] += 1
        elif confidence is None or confidence < min_confidence:
            dropped[f"confidence below {min_confidence} or missing"] += 1
        else:
            rows.append((clean_tweet(row["text"]), row["sentiment"]))
    return _collect("tweets", rows, lambda raw: _label_from(raw, POSITIVE, NEGATIVE), dropped)


def load_drugs(part: str) -> LabelledSet:
    """drugs.com patient reviews of `part` ('train' or 'test'): positive and negative; neutral left out."""
    reader = csv.DictReader(io.StringIO(sources.drugs_tsv_bytes(part).decode("utf-8")), delimiter="\t")
    dropped: Counter = Counter()
    rows = []
    for row in reader:
        if row["rating"] == "neutral":
            dropped["neutral rating"] += 1
        else:
            rows.append((html.unescape(row["review"] or "").strip('" '), row["rating"]))
    return _collect(f"drugs-{part}", rows, lambda raw: _label_from(raw, POSITIVE, NEGATIVE), dropped)


def load_csv(
    path: str | Path,
    text_column: str | None = None,
    label_column: str | None = None,
    positive: Iterable[str] | None = None,
    negative: Iterable[str] | None = None,
) -> LabelledSet:
    """A user's CSV, or JSONL (by its suffix). Sephora's Kaggle schema works without options:
    `review_text` with `is_recommended` (1/0), or `rating` (4-5 positive, 1-2 negative, 3 counted
    as unknown)."""
    columns, table = read_table(path)  # the CLI's and the UI's reader: a byte-order mark allowed
    text_column = text_column or guess_text_column(columns)
    label_column = label_column or next(
        (c for c in (SEPHORA_LABEL, "label", "sentiment", SEPHORA_RATING) if c in columns), None
    )
    if text_column not in columns or label_column not in columns:
        raise ValueError(
            f"{path}: need a text and a label column (found {columns}); pass --text-column and --label-column"
        )
    pos = {v.lower() for v in positive} if positive else POSITIVE
    neg = {v.lower() for v in negative} if negative else NEGATIVE
    if label_column == SEPHORA_RATING and not positive and not negative:
        to_label = _rating_label
    else:
        to_label = lambda raw: _label_from(raw, pos, neg)  # noqa: E731
    rows = [(row.get(text_column), row.get(label_column)) for row in table]
    return _collect(Path(path).stem, rows, to_label)


def deduplicate(data: LabelledSet) -> LabelledSet:
    """Keep the first copy of each text; drop every copy of a text seen with both labels."""
    seen: dict[str, int] = {}
    conflicting: set[str] = set()
    for text, label in zip(data.texts, data.labels, strict=True):
        if text in seen and seen[text] != label:
            conflicting.add(text)
        seen.setdefault(text, label)
    for text in conflicting:
        del seen[text]
    conflicting_rows = sum(text in conflicting for text in data.texts)
    data.report.bad["duplicate text"] += len(data) - len(seen) - conflicting_rows
    data.report.bad["text with both labels"] += conflicting_rows
    return LabelledSet(data.name, list(seen), list(seen.values()), data.report)


def balance(data: LabelledSet, seed: int, max_ratio: float = 1.0) -> LabelledSet:
    """Undersample the majority class to at most `max_ratio` times the minority's size (1.0: equal,
    as the seed project did). A set with one class is left as it is."""
    import random

    by_label: dict[int, list[int]] = {}
    for i, label in enumerate(data.labels):
        by_label.setdefault(label, []).append(i)
    if len(by_label) < 2:
        return data
    size = int(min(len(v) for v in by_label.values()) * max_ratio)
    rng = random.Random(seed)
    keep = sorted(i for idx in by_label.values() for i in (rng.sample(idx, size) if len(idx) > size else idx))
    data.report.bad["undersampled"] += len(data) - len(keep)
    return data.subset(keep, data.name)


def sample(data: LabelledSet, n: int | None, seed: int) -> LabelledSet:
    """At most `n` examples (None: all), picked by a seeded shuffle and kept in their original
    order: a set sorted by class still gives both classes."""
    import random

    if n is None or n >= len(data):
        return data
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    return data.subset(sorted(order[:n]), data.name)


def split(
    data: LabelledSet, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1
) -> dict[str, LabelledSet]:
    """Stratified train / validation / test split of a deduplicated set (so no shared text)."""
    indices = list(range(len(data)))
    rest, test = train_test_split(indices, test_size=test_fraction, stratify=data.labels, random_state=seed)
    train, val = train_test_split(
        rest,
        test_size=val_fraction / (1 - test_fraction),
        stratify=[data.labels[i] for i in rest],
        random_state=seed,
    )
    return {
        "train": data.subset(train, f"{data.name}-train"),
        "validation": data.subset(val, f"{data.name}-validation"),
        "test": data.subset(test, f"{data.name}-test"),
    }
