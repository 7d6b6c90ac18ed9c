"""The teacher's chain, each step resumable (rerun the same command after a stop):

    python -m training.teacher.run embed      # features of every text the chain needs (hours on 2 cores)
    python -m training.teacher.run head       # the head on cached features, calibrated, scored
    python -m training.teacher.run label      # soft labels for distillation -> models/sentiment-accurate/

Features are cached by content hash (training.teacher.features); the head and the soft labels
are small and committed, so a student can be trained again without the teacher.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from review_sentiment.progress import log
from training import data as datasets
from training import mix, sentences
from training.data import LabelledSet

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
    evaluation = {t for s in m.tests.values() for t in s.texts}
    labelled = set(m.train.texts) | set(m.validation.texts)
    stars = datasets.deduplicate(datasets.load_fine_foods("train"))
    unlabelled = sorted({t for t, y in zip(stars.texts, stars.labels, strict=True) if y == 0} - evaluation - labelled)
    reviews = {
        "clothing": m.parts["clothing"]["train"].texts,
        "fine-foods": [t for t in stars.texts if t not in evaluation],
        "drugs": m.parts["drugs"]["train"].texts,
    }
    pool = sentences.pool(reviews, pool_size, seed, exclude=evaluation | labelled)
    return ChainData(m, unlabelled, pool)


def embed(data: ChainData) -> None:
    from training.teacher.features import FeatureCache, features

    cache = FeatureCache()
    groups = {
        "validation texts": data.mix.validation.texts,
        "training texts": data.mix.train.texts,
        **{f"{name} texts": s.texts for name, s in data.teacher_tests().items()},
        "unlabelled Fine Foods reviews": data.fine_foods_unlabelled,
        "pool sentences": data.sentences,
    }
    for what, texts in groups.items():
        features(texts, cache, what)
    log("teacher features: all cached")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["embed", "head", "label"])
    args = parser.parse_args(argv)
    data = chain_data()
    if args.step == "embed":
        embed(data)


if __name__ == "__main__":
    main()
