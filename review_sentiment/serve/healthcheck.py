"""Health checks for containers: exit 0 when healthy, 1 otherwise, with one line saying why.

    python -m review_sentiment.serve.healthcheck           # ready: the model has a READY worker
    python -m review_sentiment.serve.healthcheck --live    # live: the frontend answers at all

docker-compose's healthcheck and the Kubernetes startup/readiness probes use the first: TorchServe's
/ping says Healthy before any model is loaded, and `describe` succeeds with no READY worker. The
Kubernetes liveness probe uses the second, so a worker that TorchServe is restarting by itself does
not get the whole pod killed. Both go through TorchServeClient, so they read the endpoints and
key_file.json of SENTIMENT_RUN_DIR and work with token auth on or off.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

from review_sentiment import paths
from review_sentiment.client.rest import ApiError, TorchServeClient


def check_ready(client: TorchServeClient, min_ready: int) -> tuple[bool, str]:
    ready = client.ready_workers()
    return ready >= min_ready, f"{client.model}: {ready} READY worker(s), {min_ready} needed"


def check_live(client: TorchServeClient) -> tuple[bool, str]:
    # Any answer, even 500 "Unhealthy" while a worker restarts, means the frontend is serving.
    response = client.request("GET", "inference", "/ping")
    return True, f"frontend answered /ping with HTTP {response.status_code}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, default=paths.run_dir(), help="server run folder (keys, endpoints)")
    parser.add_argument("--model", default=paths.model_name())
    parser.add_argument("--live", action="store_true", help="only check that the frontend answers")
    parser.add_argument("--min-ready", type=int, default=1, help="READY workers needed (default 1)")
    parser.add_argument("--timeout", type=float, default=5, help="seconds per request (default 5)")
    args = parser.parse_args(argv)

    client = TorchServeClient.for_run_dir(args.run_dir, model=args.model, timeout=args.timeout)
    try:
        healthy, reason = check_live(client) if args.live else check_ready(client, args.min_ready)
    except (requests.RequestException, ApiError) as error:
        healthy, reason = False, f"{type(error).__name__}: {error}"
    print(("healthy: " if healthy else "unhealthy: ") + reason)
    return 0 if healthy else 1


if __name__ == "__main__":
    sys.exit(main())
