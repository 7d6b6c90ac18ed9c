"""The teacher's chain, each step resumable (rerun the same command after a stop):

    python -m training.teacher.run embed      # features of every text the chain needs (hours on 2 cores)
    python -m training.teacher.run head       # the head on cached features, calibrated, scored
    python -m training.teacher.run label      # soft labels for distillation -> models/sentiment-accurate/
    python -m training.teacher.run report     # the head on every evaluation set

Features are cached by content hash (training.teacher.features); the head and the soft labels
are small and committed, so a student can be trained again without the teacher.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from review_sentiment.paths import REPO
from review_sentiment.progress import log
from training import data as datasets
from training import mix, sentences
from training.data import LabelledSet
from training.metrics import classification_metrics

ACCURATE_MODEL = REPO / "models" / "sentiment-accurate"  # the head, its config and soft labels
SEED = 42
POOL_SIZE = 24_000  # sentences the teacher labels: about half an hour on 2 cores
IMDB_TEST_SAMPLE = 1000  # long reviews cost 10x a sentence: the teacher scores a fixed sample


@dataclass
class ChainData:
    mix: mix.Mix
    fine_foods_unlabelled: list[str]  # 1-4 star Fine Foods training reviews: the teacher's to label
    sentences: list[str]

    def teacher_tests(self) -> dict[str, LabelledSet]:
        tests = dict(self.mix.tests)
        tests["imdb-test"] = datasets.sample(tests["imdb-test"], IMDB_TEST_SAMPLE, seed=0)
        return tests


def chain_data(seed: int = SEED, pool_size: int = POOL_SIZE) -> ChainData:
    m = mix.build_mix(mix.DEFAULT_SOURCES, seed)
    return ChainData(m, *unlabelled_texts(m, seed, pool_size))


def unlabelled_texts(m: mix.Mix, seed: int = SEED, pool_size: int = POOL_SIZE) -> tuple[list[str], list[str]]:
    """(the 1-4 star Fine Foods training reviews, the pool sentences) of mix `m`: texts with no
    human sentiment label, which the teacher labels; none is in an evaluation or labelled set."""
    evaluation = {t for s in m.tests.values() for t in s.texts}
    labelled = set(m.train.texts) | set(m.validation.texts)
    stars = datasets.deduplicate(datasets.load_fine_foods("train"))
    unlabelled = sorted({t for t, y in zip(stars.texts, stars.labels, strict=True) if y == 0} - evaluation - labelled)
    reviews = {
        "clothing": m.parts["clothing"]["train"].texts if "clothing" in m.parts else [],
        "fine-foods": [t for t in stars.texts if t not in evaluation],
        "drugs": m.parts["drugs"]["train"].texts if "drugs" in m.parts else [],
    }
    return unlabelled, sentences.pool(reviews, pool_size, seed, exclude=evaluation | labelled)


def embed(data: ChainData) -> None:
    from training.teacher.features import FeatureCache, features

    cache = FeatureCache()
    # What the student needs first (its soft labels), then what only the teacher's report needs.
    groups = {
        "validation texts": data.mix.validation.texts,
        "training texts": data.mix.train.texts,
        "unlabelled Fine Foods reviews": data.fine_foods_unlabelled,
        "pool sentences": data.sentences,
        **{f"{name} texts": s.texts for name, s in data.teacher_tests().items()},
    }
    for what, texts in groups.items():
        features(texts, cache, what)
    log("teacher features: all cached")


def set_summary(labels: Sequence[int], probs: np.ndarray) -> dict:
    """Accuracy, balanced accuracy, recall per class and ECE of one set."""
    m = classification_metrics(labels, probs)
    recall = {name: round(c["recall"], 4) for name, c in m["per_class"].items()}
    return {
        "n": m["n"],
        "accuracy": round(m["accuracy"], 4),
        "balanced_accuracy": round(sum(recall.values()) / len(recall), 4),
        "recall": recall,
        "ece": round(m["ece"], 4),
    }


def score(fitted, cache, tests: dict[str, LabelledSet]) -> dict:
    """The head's figures on every evaluation set, and on texts of <= 100 characters pooled."""
    from training.scoring import accuracy_by_length, pooled_by_length
    from training.teacher.features import text_key

    sets, by_length = {}, []
    for name, s in tests.items():
        probs = fitted.probabilities(cache.get([text_key(t) for t in s.texts]))
        sets[name] = set_summary(s.labels, probs)
        by_length.append(accuracy_by_length(s.texts, s.labels, probs))
    return {"sets": sets, "by_length": pooled_by_length(by_length)}


def train_head(data: ChainData, out: Path = ACCURATE_MODEL) -> dict:
    """Fit the head specs, keep the best by validation accuracy, calibrate, save."""
    from training.teacher import head

    started = time.time()
    (train_x, train_y), (val_x, val_y) = _xy(data.mix.train), _xy(data.mix.validation)
    fitted, table = head.select(train_x, train_y, val_x, val_y)
    save_head(fitted, out)
    selection = {"selection": table, "chosen": fitted.spec.__dict__, "temperature": fitted.temperature}
    selection |= {"train_size": len(train_y), "validation_size": len(val_y), "seconds": round(time.time() - started)}
    _write_report(out, "selection", selection)
    log(f"teacher head: {fitted.spec} validation {fitted.validation_accuracy:.4f}, T {fitted.temperature}")
    return selection


def report(data: ChainData, out: Path = ACCURATE_MODEL) -> dict:
    """The saved head on every evaluation set; and, measured both ways, the same head fitted
    again on the mix without the Fine Foods source (whose negatives are v1's guesses)."""
    from training.teacher import head
    from training.teacher.features import FeatureCache

    cache, tests = FeatureCache(), data.teacher_tests()
    fitted = load_head(out)
    scores = score(fitted, cache, tests)
    (train_x, train_y), (val_x, val_y) = _xy(data.mix.train, cache), _xy(data.mix.validation, cache)
    fine_foods = set(data.mix.parts["fine-foods"]["train"].texts)
    keep = [i for i, t in enumerate(data.mix.train.texts) if t not in fine_foods]
    spec = head.HeadSpec(**_read_report(out, "selection")["chosen"])
    without = head.calibrate(head.fit(spec, train_x[keep], train_y[keep], val_x, val_y), val_x, val_y)
    scores["without_fine_foods"] = score(without, cache, tests)["sets"]
    _write_report(out, "evaluation", scores)
    return scores


def _xy(s: LabelledSet, cache=None) -> tuple[np.ndarray, np.ndarray]:
    from training.teacher.features import FeatureCache, text_key

    cache = cache or FeatureCache()
    return cache.get([text_key(t) for t in s.texts]), np.asarray(s.labels)


def _write_report(out: Path, name: str, data: dict) -> None:
    (out / "report").mkdir(parents=True, exist_ok=True)
    (out / "report" / f"teacher-{name}.json").write_text(json.dumps(data, indent=2) + "\n")


def _read_report(out: Path, name: str) -> dict:
    return json.loads((out / "report" / f"teacher-{name}.json").read_text())


def save_head(fitted, out: Path) -> None:
    from safetensors.torch import save_file

    from review_sentiment.core.pooled import PooledConfig
    from training.teacher import features, head, weights

    out.mkdir(parents=True, exist_ok=True)
    extra = features.EXTRA_LAYERS if fitted.spec.layers == "last+mid" else []
    PooledConfig(
        prompt=features.PROMPT,
        extra_layers=extra,
        head_hidden=fitted.spec.hidden,
        features=head.HIDDEN * (1 + len(extra)),
        calibration_temperature=fitted.temperature,
        encoder={
            "name": "EmbeddingGemma-300M",
            "model_sha256": weights.MODEL_SHA256,
            "source": f"{weights.PACKAGE} 0.2.1..0.2.25 (zip chunks, joined)",
            "licence": "Gemma Terms of Use (see GEMMA_NOTICE.md)",
        },
    ).write(out)
    state = {k: v.contiguous() for k, v in fitted.head.state_dict().items()}
    save_file(state, str(out / "head.safetensors"))


def label(data: ChainData, out: Path = ACCURATE_MODEL) -> Path:
    """Soft labels for every text the student learns from: the mix's training texts, the
    unlabelled Fine Foods reviews and the pool sentences."""
    from training.teacher import labels
    from training.teacher.features import FeatureCache, text_key

    fitted = load_head(out)
    cache = FeatureCache()
    texts = list(dict.fromkeys(data.mix.train.texts + data.fine_foods_unlabelled + data.sentences))
    logits = fitted.logits(cache.get([text_key(t) for t in texts]))
    path = labels.save(out, texts, logits[:, 1] - logits[:, 0], fitted.temperature)
    log(f"teacher labels: {len(texts)} texts -> {path}")
    return path


def load_head(folder: Path):
    """The saved head as a FittedHead (raw features in, logits out)."""
    from safetensors.torch import load_file

    from review_sentiment.core.pooled import PooledConfig, make_head
    from training.teacher.head import FittedHead, HeadSpec

    config = PooledConfig.read(folder)
    module = make_head(config.features, config.head_hidden)
    module.load_state_dict(load_file(folder / "head.safetensors"))
    spec = HeadSpec("last+mid" if config.extra_layers else "last", config.head_hidden, 0.0)
    return FittedHead(spec, module.eval(), validation_accuracy=float("nan"), temperature=config.calibration_temperature)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["embed", "head", "label", "report"])
    args = parser.parse_args(argv)
    data = chain_data()
    if args.step == "embed":
        embed(data)
    elif args.step == "head":
        print(json.dumps(train_head(data), indent=2))
    elif args.step == "label":
        label(data)
    else:
        print(json.dumps(report(data), indent=2))


if __name__ == "__main__":
    main()
