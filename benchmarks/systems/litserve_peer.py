"""LitServe 0.2.19 over the core: FastAPI (uvicorn) in one process, the model in
`workers_per_device` worker processes fed through queues; LitServe's batching (`max_batch_size`,
`batch_timeout`) is TorchServe's batchSize and maxBatchDelay. No API key: auth off.

    .venv-peers/bin/python -m benchmarks.systems.litserve_peer --checkpoint DIR --config CONFIG.json --port P
"""

from __future__ import annotations

import psutil

from benchmarks.systems import peer
from benchmarks.systems.peer import Layout, PeerServer, cmdline

try:
    import litserve as ls
    from fastapi import HTTPException
except ImportError:
    ls = None


def _role(process: psutil.Process) -> str:
    # The started process and its forks (uvicorn's API server, the queue manager) are the frontend;
    # the inference workers are spawned.
    line = cmdline(process)
    return "workers" if "spawn_main" in line else "other" if "resource_tracker" in line else "frontend"


def system(config: dict) -> PeerServer:
    return PeerServer("litserve", "LitServe 0.2.19", __name__, "/predict", _role, config)


if ls is not None:  # the peers' venv; the harness's has no litserve and uses system() only

    class SentimentAPI(ls.LitAPI):
        """Module level: LitServe spawns its workers and pickles the API object to them."""

        def __init__(self, checkpoint: str, config: dict, **options) -> None:
            super().__init__(**options)
            self.checkpoint, self.config = checkpoint, config

        def setup(self, device) -> None:
            self.classifier = peer.load_classifier(self.checkpoint, self.config)

        def decode_request(self, request: dict) -> dict:
            return request  # {"text": ...}: the core validates it, as in the handler

        def predict(self, batch: list[dict]) -> list[tuple[int, dict]]:
            return peer.classify_json(self.classifier, list(batch))

        def encode_response(self, output: tuple[int, dict]) -> dict:
            status, body = output
            if status != 200:
                raise HTTPException(status, detail=body)
            return body


def main() -> None:
    args = peer.server_args("LitServe over the review sentiment core (benchmark peer).")
    config = peer.read_config(args.config)
    layout = Layout.of(config)
    options = {"max_batch_size": layout.batch_size, "batch_timeout": layout.delay_ms / 1000}
    api = SentimentAPI(args.checkpoint, config, **options)
    server = ls.LitServer(api, accelerator=layout.device, devices=1, workers_per_device=layout.workers, timeout=60)
    server.run(host="127.0.0.1", port=args.port, num_api_servers=1, generate_client_file=False, log_level="warning")


if __name__ == "__main__":
    main()
