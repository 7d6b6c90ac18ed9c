"""Where a TorchServe worker's time goes: py-spy samples of the worker under load, each stack
put in one part of the serving path by the innermost frame that belongs to a known part.

py-spy (PyPI) reads the worker's Python stacks from outside, without stopping it
(`--nonblocking`), and drops samples where the thread sleeps (waiting on the frontend's socket),
so the samples are the main thread's busy time. The model's forward also runs on torch's
intra-op threads, which py-spy does not see: their time is the worker's CPU (from /proc) minus
what the samples give to every other part.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

MODEL = "model forward (torch)"
# (part, paths a frame's file ends with or lies under); the first part, walking from the
# innermost frame outwards, whose pattern a frame's file matches takes the sample. py-spy writes
# files relative to their sys.path entry ("torch/nn/modules/module.py").
PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("tokenization", ("tokenizers/", "transformers/tokenization", "review_sentiment/core/encoding.py")),
    (MODEL, ("torch/nn/", "transformers/models/", "transformers/modeling_", "transformers/integrations/")),
    ("core: validation, padding, softmax, results", ("review_sentiment/core/",)),
    ("TorchServe metrics (handler's and its own)", ("ts/metrics/",)),
    ("handler: headers, JSON, metrics calls", ("handler/sentiment_handler.py", "sentiment_handler.py")),
    (
        "TorchServe worker protocol (socket, decode, encode, dispatch)",
        ("ts/protocol/", "ts/model_service_worker.py", "ts/service.py", "ts/context.py", "ts/torch_handler/"),
    ),
)
OTHER = "other"


def available() -> bool:
    return shutil.which("py-spy") is not None or (Path(sys.executable).parent / "py-spy").exists()


def _py_spy() -> str:
    local = Path(sys.executable).parent / "py-spy"
    return str(local) if local.exists() else "py-spy"


def record(pid: int, seconds: float, output: Path, rate: int = 200) -> subprocess.Popen:
    """Start sampling `pid` for `seconds`, in the background; wait on the returned process."""
    command = [_py_spy(), "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))), "--rate", str(rate)]
    command += ["--nonblocking", "--format", "raw", "--output", str(output)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def frame_file(frame: str) -> str:
    """The file of a py-spy frame, `function (file:line)`."""
    return frame[frame.rfind("(") + 1 : frame.rfind(":")]


def _matches(file: str, pattern: str) -> bool:
    return file.startswith(pattern) or f"/{pattern}" in file


def part_of(stack: list[str]) -> str:
    """The part a stack (outermost frame first, as py-spy writes it) is charged to."""
    for frame in reversed(stack):
        file = frame_file(frame)
        for part, patterns in PARTS:
            if any(_matches(file, p) for p in patterns):
                return part
    return OTHER


def split(lines: Iterable[str]) -> Counter:
    """Samples per part from py-spy's raw (collapsed) output: `frame;frame;... count`."""
    samples: Counter = Counter()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            samples[part_of(stack.split(";"))] += int(count)
    return samples


def per_request_ms(samples: Counter, rate: int, worker_cpu_s: float, requests: int) -> dict[str, float]:
    """CPU ms per request for each part: sampled seconds for the main thread's parts, and for the
    model the rest of the worker's CPU (the intra-op threads included)."""
    seconds = {part: count / rate for part, count in samples.items()}
    outside_model = sum(s for part, s in seconds.items() if part != MODEL)
    parts = {part: s for part, s in seconds.items() if part != MODEL}
    parts[MODEL] = max(0.0, worker_cpu_s - outside_model)
    return {part: 1000 * s / max(1, requests) for part, s in parts.items()}
