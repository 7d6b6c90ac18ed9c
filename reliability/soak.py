"""Soak: minutes of mixed load against a TorchServe this script starts itself, with memory sampling.

    python -m reliability.soak                          # 10 minutes, released model
    python -m reliability.soak --minutes 1 --checkpoint runs/sentiment/model

Clients send good reviews of every length (text and JSON) mixed with the light bad requests of
reliability.inputs, each of which must get its expected answer. The resident memory (RSS) of
the Java frontend and of the Python workers is sampled throughout; growth is measured from the
end of the warm-up to the end of the run. Exit status 1 on any unexpected answer, a worker
restart, or memory growth over the limit. Writes a JSON report and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psutil
import requests
import yaml

from reliability.inputs import PREDICTION, Case, cases
from review_sentiment import paths
from review_sentiment.client.load_driver import closed_loop
from review_sentiment.core.settings import InferenceSettings
from review_sentiment.markdown import markdown_table
from review_sentiment.serve.sandbox import Sandbox, sandbox

# Phrases that reviews are built from; lengths vary from a phrase to max_chars.
WORDS = (
    "shade", "lasts", "all", "day", "lovely", "texture", "greasy", "broke", "me", "out", "returning",
    "it", "perfect", "value", "smells", "great", "would", "not", "buy", "again", "my", "skin", "feels",
    "soft", "packaging", "arrived", "damaged", "colour", "is", "exactly", "as", "pictured",
)  # fmt: skip
# What one request came to: its kind ("good" or "bad") and what went wrong, if anything.
Exchange = tuple[str, str | None]


@dataclass
class Sample:
    t: float
    frontend_mib: float
    workers_mib: float
    worker_pids: list[int]


@dataclass
class SoakReport:
    seconds: float
    concurrency: int
    requests: int = 0
    by_kind: Counter = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    warmup_s: float = 0.0

    @property
    def worker_restarts(self) -> int:
        seen = [tuple(s.worker_pids) for s in self.samples if s.worker_pids]
        return sum(a != b for a, b in zip(seen, seen[1:], strict=False))

    def memory(self) -> dict[str, dict[str, float]]:
        """RSS (MiB) right after warm-up and at the end (means of the first and last tenth of the
        samples after warm-up), peak, and growth in percent."""
        steady = [s for s in self.samples if s.t >= self.warmup_s] or self.samples
        tenth = max(1, len(steady) // 10)
        out = {}
        for part in ("frontend_mib", "workers_mib"):
            values = [getattr(s, part) for s in steady]
            start, end = statistics.mean(values[:tenth]), statistics.mean(values[-tenth:])
            out[part.removesuffix("_mib")] = {
                "after_warmup_mib": round(start, 1),
                "end_mib": round(end, 1),
                "peak_mib": round(max(values), 1),
                "growth_pct": round(100 * (end - start) / start, 2) if start else 0.0,
            }
        return out

    def to_dict(self) -> dict:
        return {
            "seconds": round(self.seconds, 1),
            "concurrency": self.concurrency,
            "requests": self.requests,
            "requests_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "by_kind": dict(self.by_kind),
            "unexpected": self.unexpected[:50],
            "unexpected_count": len(self.unexpected),
            "worker_restarts": self.worker_restarts,
            "warmup_s": self.warmup_s,
            "memory": self.memory(),
            "samples": [asdict(s) for s in self.samples],
        }


def good_review(rng: random.Random, max_chars: int) -> str:
    """A review of a random length class: a phrase, a paragraph, or close to max_chars."""
    limit = rng.choice((80, 800, max_chars))
    words = []
    length = 0
    target = rng.randint(max(5, limit // 4), limit)
    while length < target:
        word = rng.choice(WORDS)
        words.append(word)
        length += len(word) + 1
    return " ".join(words)[:max_chars].strip() or "good"


def next_request(rng: random.Random, max_chars: int, bad: list[Case]) -> Case:
    roll = rng.random()
    if roll < 0.55:
        return Case("text", good_review(rng, max_chars).encode(), "text/plain; charset=utf-8", PREDICTION)
    if roll < 0.75:
        body = json.dumps({"text": good_review(rng, max_chars)}).encode()
        return Case("json", body, "application/json", PREDICTION)
    return rng.choice(bad)


def check(case: Case, response: requests.Response) -> str | None:
    """None if the answer is the expected one, else what went wrong (never the review text)."""
    if case.expect == PREDICTION:
        if response.status_code == 200 and "label" in response.json():
            return None
    elif response.status_code == case.expect and (case.frontend or response.json().get("message")):
        return None
    return f"{case.name}: expected {case.expect}, got HTTP {response.status_code}"


def run_load(
    server: Sandbox,
    seconds: float,
    concurrency: int = 8,
    max_chars: int = InferenceSettings.max_chars,
    warmup_fraction: float = 0.2,
    sample_every: float = 2.0,
    seed: int = 0,
) -> SoakReport:
    """Mixed load on a running server for `seconds`, sampling memory meanwhile."""
    report = SoakReport(seconds=seconds, concurrency=concurrency, warmup_s=seconds * warmup_fraction)
    bad = [c for c in cases(max_chars) if c.expect != PREDICTION and not c.heavy]
    client = server.new_client(timeout=120)
    predict_path = f"/predictions/{client.model}"
    start = time.monotonic()
    deadline = start + seconds

    def exchange(rng: random.Random) -> Exchange:
        case = next_request(rng, max_chars, bad)
        headers = {"Content-Type": case.content_type} if case.content_type else {}
        try:
            response = client.request("POST", "inference", predict_path, data=case.body, headers=headers)
            problem = check(case, response)
        except (requests.RequestException, ValueError) as error:
            problem = f"{case.name}: {type(error).__name__}"
        return ("good" if case.expect == PREDICTION else "bad"), problem

    def client_of(index: int, pool: ThreadPoolExecutor) -> Callable[[], Awaitable[Exchange]]:
        rng = random.Random(seed * 1000 + index)
        return lambda: asyncio.get_running_loop().run_in_executor(pool, exchange, rng)

    def sampler() -> None:
        while time.monotonic() < deadline + sample_every:
            try:
                usage = server.usage()
                report.samples.append(
                    Sample(
                        round(time.monotonic() - start, 1),
                        round(usage.frontend.rss_mib, 1),
                        round(sum(w.rss_mib for w in usage.workers), 1),
                        usage.worker_pids,
                    )
                )
            except psutil.Error:
                pass  # a worker exiting between listing and reading: the restart shows in the pids
            time.sleep(sample_every)

    sampling = threading.Thread(target=sampler)
    sampling.start()
    # The project's client blocks (requests): a pool thread for each client, so none waits for one.
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = asyncio.run(closed_loop([client_of(i, pool) for i in range(concurrency)], deadline))
    sampling.join()
    for _, _, (kind, problem) in answers:
        report.requests += 1
        report.by_kind[kind] += 1
        if problem:
            report.unexpected.append(problem)
    report.seconds = time.monotonic() - start
    return report


def markdown(report: SoakReport) -> str:
    data = report.to_dict()
    lines = [
        f"Soak: {data['seconds']:.0f} s, {report.concurrency} clients, {data['requests']} requests "
        f"({data['requests_per_s']}/s; good {data['by_kind'].get('good', 0)}, bad {data['by_kind'].get('bad', 0)}), "
        f"unexpected answers {data['unexpected_count']}, worker restarts {data['worker_restarts']}",
        "",
        markdown_table(
            ("process", "RSS after warm-up, MiB", "RSS at end, MiB", "peak, MiB", "growth"),
            (
                (part, m["after_warmup_mib"], m["end_mib"], m["peak_mib"], f"{m['growth_pct']:+.1f}%")
                for part, m in data["memory"].items()
            ),
        ),
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Soak TorchServe with mixed load and watch its memory.")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--checkpoint", type=Path, default=paths.RELEASED_MODEL)
    parser.add_argument("--model-config", type=Path, default=paths.MODEL_CONFIG)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--warmup-fraction", type=float, default=0.2)
    parser.add_argument("--max-growth-pct", type=float, default=10.0)
    parser.add_argument("--output", type=Path, default=paths.REPO / "results" / "local" / "soak.json")
    args = parser.parse_args(argv)

    # The server's own limit: its model-config and environment, as the handler reads them.
    max_chars = InferenceSettings.from_sources(yaml.safe_load(args.model_config.read_text()).get("handler")).max_chars
    with sandbox(args.checkpoint, model_config=args.model_config) as server:
        report = run_load(server, args.minutes * 60, args.concurrency, max_chars, args.warmup_fraction)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report.to_dict(), indent=2))
    print(markdown(report))
    print(f"report: {args.output}")
    growth = max(m["growth_pct"] for m in report.memory().values())
    failed = report.unexpected or report.worker_restarts or growth >= args.max_growth_pct
    for problem in Counter(report.unexpected).most_common(10):
        print("unexpected:", *problem)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
