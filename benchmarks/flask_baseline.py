"""BASELINE ONLY, not part of the service: the seed project's serving design, kept to be measured.

A Flask app that calls a transformers `pipeline("text-classification")` for each request,
one request at a time (Flask's single-threaded development server, `threaded=False`), on
the model's stored settings: no batching, no worker pool, no precision choice. The seed
served its DistilBERT this way at 1.69 requests/s. The benchmark harness starts it as a
subprocess on a free loopback port and stops it afterwards:

    python -m benchmarks.flask_baseline --checkpoint models/review-sentiment --port 5000

POST /predict with the review as text/plain (or JSON {"text": ...}); GET /health.
"""

from __future__ import annotations

import argparse
import logging

import torch
from flask import Flask, jsonify, request
from transformers import pipeline


def create_app(checkpoint: str, device: str = "cpu") -> Flask:
    # fp32 as the seed's checkpoint was; this project's checkpoint is stored in fp16.
    classifier = pipeline("text-classification", model=checkpoint, device=device, dtype=torch.float32)
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
        # truncation: the pipeline's own limit (the model's 512 tokens), as the seed had it.
        result = classifier(text, truncation=True)[0]
        return jsonify(label=result["label"], score=result["score"])

    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="The seed's Flask serving design (benchmark baseline).")
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, or cuda:0 on a GPU machine")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no per-request lines
    # Bound to loopback only; single-threaded, as the seed ran it.
    create_app(args.checkpoint, args.device).run(host="127.0.0.1", port=args.port, threaded=False)


if __name__ == "__main__":
    main()
