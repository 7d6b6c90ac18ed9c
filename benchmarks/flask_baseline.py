"""BASELINE ONLY, not part of the service: the seed project's serving design, kept to be measured.

A Flask app that calls a transformers `pipeline("text-classification")` for each request,
one request at a time (Flask's single-threaded development server, `threaded=False`): no
batching, no worker pool. The seed served its DistilBERT this way at 1.69 requests/s. The
benchmark runs it twice: as the seed had it (fp32, the model's 512 tokens) and at the served
precision and max_length, so that the ratio to TorchServe measures the serving design, not
a cheaper model call. The harness starts it as a subprocess on a free loopback port:

    python -m benchmarks.flask_baseline --checkpoint models/review-sentiment --port 5000 \
        [--precision bf16] [--max-length 256]

POST /predict with the review as text/plain (or JSON {"text": ...}); GET /health.
"""

from __future__ import annotations

import argparse
import logging

import torch
from flask import Flask, jsonify, request
from transformers import pipeline

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def create_app(checkpoint: str, device: str = "cpu", precision: str = "fp32", max_length: int | None = None) -> Flask:
    """fp32 and max_length None (the model's 512 tokens) are the seed's settings."""
    classifier = pipeline("text-classification", model=checkpoint, device=device, dtype=DTYPES[precision])
    limit = {} if max_length is None else {"max_length": max_length}
    app = Flask("seed-flask-baseline")

    @app.get("/health")
    def health():
        return jsonify(status="ok")

    @app.post("/predict")
    def predict():
        payload = request.get_json(silent=True)
        text = payload.get("text") if isinstance(payload, dict) else request.get_data(as_text=True)
        if not isinstance(text, str) or not text.strip():
            return jsonify(error='send the review as text/plain or JSON {"text": ...}'), 400
        # truncation at max_length, or at the model's own 512 tokens as the seed had it.
        result = classifier(text, truncation=True, **limit)[0]
        return jsonify(label=result["label"], score=result["score"])

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The seed's Flask serving design (benchmark baseline).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:0 on a GPU machine")
    parser.add_argument("--precision", choices=sorted(DTYPES), default="fp32", help="weights (the seed: fp32)")
    parser.add_argument("--max-length", type=int, help="tokens per review (default: the model's, 512)")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
    # Bound to loopback only; single-threaded, as the seed ran it.
    create_app(args.checkpoint, args.device, args.precision, args.max_length).run(
        host="127.0.0.1", port=args.port, threaded=False
    )


if __name__ == "__main__":
    main()
