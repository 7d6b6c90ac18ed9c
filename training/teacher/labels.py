"""The teacher's soft labels, kept by content hash for distillation.

`teacher_labels.npz` beside the head holds, per text, the sha256-based key of the text and the
teacher's logit margin z = logit(positive) - logit(negative), uncalibrated: the student's
training applies the teacher's temperature, p = sigmoid(z / T). It holds no text, is small
(about 20 bytes a text) and is committed, so the student can be retrained without the teacher.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FILE = "teacher_labels.npz"
KEY_BYTES = 16  # numpy's "S16" drops a key's trailing zero bytes when read back: padded again on load


def key(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()[:KEY_BYTES]


def save(folder: Path, texts: Sequence[str], margins: np.ndarray, temperature: float) -> Path:
    path = Path(folder) / FILE
    keys = np.frombuffer(b"".join(key(t) for t in texts), dtype="S16")
    np.savez_compressed(path, keys=keys, margins=margins.astype(np.float32), temperature=np.float32(temperature))
    return path


class TeacherLabels:
    def __init__(self, path: Path):
        with np.load(path) as data:
            keys = (bytes(k).ljust(KEY_BYTES, b"\0") for k in data["keys"])
            self.margins = dict(zip(keys, data["margins"].tolist(), strict=True))
            self.temperature = float(data["temperature"])

    def __len__(self) -> int:
        return len(self.margins)

    def probability(self, text: str) -> float | None:
        """Calibrated p(positive) of `text`, None if the teacher never labelled it."""
        z = self.margins.get(key(text))
        return None if z is None else float(1.0 / (1.0 + np.exp(-z / self.temperature)))
