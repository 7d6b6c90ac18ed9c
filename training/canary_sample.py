"""Draw the rollout canary's labelled sample (review_sentiment/serve/canary.json) from the UCI
sets. The serving layer only reads the file; drawing it needs the data sets, which live here.

    python -m training.canary_sample
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

from review_sentiment.serve.canary import CANARY_FILE, CANARY_SET, CanaryData
from training import data as datasets

SAMPLE_SETS = ("amazon", "yelp")  # UCI labelled sentences
SAMPLE_PER_SET = 200
SAMPLE_SEED = 24  # the issue that asked for the canary


def write(path: Path = CANARY_FILE) -> None:
    """Draw the sample from the UCI sets (a seeded, class-balanced draw) and write canary.json."""
    sample = []
    for name in SAMPLE_SETS:
        labelled = datasets.load_uci(name)
        rows = list(zip(labelled.texts, labelled.labels, strict=True))
        for label in (0, 1):
            side = [row for row in rows if row[1] == label]
            random.Random(SAMPLE_SEED).shuffle(side)
            sample += [
                {"set": f"uci-{name}", "text": text, "label": "positive" if y else "negative"}
                for text, y in side[: SAMPLE_PER_SET // 2]
            ]
    document = {
        "about": (
            "The rollout's canary (review_sentiment/serve/canary.py): a fixed set of reviews every version must "
            f"answer, and {len(sample)} labelled sentences drawn with seed {SAMPLE_SEED} from the UCI Sentiment "
            "Labelled Sentences (Kotzias et al., KDD 2015, CC BY 4.0), Amazon and Yelp parts, as shipped in the "
            "npm package sentiment 5.0.2 (MIT). Redraw: python -m training.canary_sample"
        ),
        "canary": CANARY_SET,
        "sample": sample,
    }
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.parse_args(argv)
    write()
    data = CanaryData.load()
    print(f"{CANARY_FILE}: {len(data.canary)} canary reviews, {len(data.sample)} labelled sentences")


if __name__ == "__main__":
    main()
