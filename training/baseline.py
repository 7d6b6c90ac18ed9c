"""A classical baseline: TF-IDF word 1-2 grams + logistic regression.

Cheap to train and to run, so it is what the fine-tuned transformer has to beat by enough to
be worth its size and latency.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from training.data import LabelledSet
from training.labels import LABEL2ID

DESCRIPTION = "TF-IDF (word 1-2 grams, sublinear tf, min_df=2) + logistic regression (C=1)"


def fit_baseline(train_set: LabelledSet, seed: int = 42) -> Pipeline:
    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2, dtype=np.float32)),
            ("logreg", LogisticRegression(C=1.0, max_iter=1000, random_state=seed)),
        ]
    )
    pipeline.fit(train_set.texts, train_set.labels)
    # Older scikit-learn keeps every pruned n-gram here, only for introspection; it would
    # dominate the pickled size.
    if hasattr(pipeline.named_steps["tfidf"], "stop_words_"):
        del pipeline.named_steps["tfidf"].stop_words_
    return pipeline


def baseline_probabilities(pipeline: Pipeline, texts: Sequence[str]) -> np.ndarray:
    """p(positive) per text."""
    positive = list(pipeline.classes_).index(LABEL2ID["positive"])
    return pipeline.predict_proba(list(texts))[:, positive]


def baseline_size(pipeline: Pipeline) -> dict:
    """Comparable to the transformer's parameter count and size on disk (pickled)."""
    logreg = pipeline.named_steps["logreg"]
    return {
        "parameters": int(logreg.coef_.size + logreg.intercept_.size),
        "vocabulary": len(pipeline.named_steps["tfidf"].vocabulary_),
        "pickle_mb": round(len(pickle.dumps(pipeline, protocol=pickle.HIGHEST_PROTOCOL)) / 1e6, 2),
    }
