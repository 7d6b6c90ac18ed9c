"""BASELINE ONLY, not part of the service: the seed project's serving design, kept to be measured.

A Flask app that calls a transformers `pipeline("text-classification")` for each request, one
request at a time (Flask's single-threaded development server): no batching, no worker pool.
The seed served its DistilBERT this way at 1.69 requests/s. The benchmark runs it as the seed
had it (fp32, the model's 512 tokens) and at the served precision and max_length, so that the
ratio to TorchServe measures the serving design, not a cheaper model call. `FlaskBaseline`
starts it as a subprocess on a free loopback port:

    python -m benchmarks.systems.flask_baseline --checkpoint models/review-sentiment --port 5000 \\
        [--precision bf16] [--max-length 256]

POST /predict with the review as text/plain (or JSON {"text": ...}).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import requests

from benchmarks.systems import FIRST_REVIEW, Running
from review_sentiment import paths
from review_sentiment.client.load_driver import Target
from review_sentiment.endpoints import Endpoints
from review_sentiment.waiting import wait_until


@dataclass
class FlaskBaseline:
    name: str  # "flask" at the server's settings, "flask-seed" as the seed ran it
    title: str
    precision: str = "fp32"
    max_length: int | None = None  # None: the model's own 512 tokens, as the seed had it
    device: str = "cpu"
    max_requests: int | None = None  # cap per cell: one request at a time is slow
    clients: tuple[str, ...] = ("rest",)
    lengths: tuple[int, ...] | None = None

    @contextlib.contextmanager
    def start(self, checkpoint: Path, work: Path, timeout: float = 300) -> Iterator[Running]:
        port = Endpoints.free().inference_port
        url = f"http://127.0.0.1:{port}/predict"
        command = [sys.executable, "-m", __name__, "--checkpoint", str(checkpoint), "--port", str(port)]
        command += ["--device", self.device, "--precision", self.precision]
        command += [] if self.max_length is None else ["--max-length", str(self.max_length)]
        work.mkdir(parents=True, exist_ok=True)
        log = work / "flask.log"
        started = time.monotonic()
        with open(log, "ab") as output:
            process = subprocess.Popen(command, cwd=paths.REPO, stdout=output, stderr=subprocess.STDOUT)
        try:

            def answered() -> bool:
                if process.poll() is not None:
                    raise RuntimeError(f"the Flask baseline exited with {process.returncode}; see {log}")
                with contextlib.suppress(requests.ConnectionError):
                    return requests.post(url, data=FIRST_REVIEW.encode(), timeout=60).status_code == 200
                return False

            if not wait_until(answered, timeout, interval_s=0.1):
                raise RuntimeError(f"the Flask baseline gave no answer in time; see {log}")
            cold_start = time.monotonic() - started
            yield Running(
                {"rest": Target("rest", url)}, cold_start, lambda: {"process": process.pid}, self.max_requests
            )
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def create_app(checkpoint: str, device: str = "cpu", precision: str = "fp32", max_length: int | None = None):
    import torch
    from flask import Flask, jsonify, request
    from transformers import pipeline

    dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]
    classifier = pipeline("text-classification", model=checkpoint, device=device, dtype=dtype)
    limit = {} if max_length is None else {"max_length": max_length}
    app = Flask("seed-flask-baseline")

    @app.post("/predict")
    def predict():
        payload = request.get_json(silent=True)
        text = payload.get("text") if isinstance(payload, dict) else request.get_data(as_text=True)
        if not isinstance(text, str) or not text.strip():
            return jsonify(error='send the review as text/plain or JSON {"text": ...}'), 400
        result = classifier(text, truncation=True, **limit)[0]  # at max_length, or the model's 512 tokens
        return jsonify(label=result["label"], score=result["score"])

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The seed's Flask serving design (benchmark baseline).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:0 on a GPU machine")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="the seed: fp32")
    parser.add_argument("--max-length", type=int, help="tokens per review (default: the model's, 512)")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
    # Loopback only; single-threaded, as the seed ran it.
    app = create_app(args.checkpoint, args.device, args.precision, args.max_length)
    app.run(host="127.0.0.1", port=args.port, threaded=False)


if __name__ == "__main__":
    main()
