"""`review-sentiment serve` and `stop`: one TorchServe in the project's run folder, left running.

    python -m review_sentiment.serve.server start [--no-auth]   # what `make serve` runs
    python -m review_sentiment.serve.server stop

It starts through the sandbox's `start()` (sandbox.py), as the tests and benchmarks do, from the
run folder SENTIMENT_RUN_DIR on the ports of the settings; `stop` finds it again by that folder.
"""

from __future__ import annotations

import argparse
import re
import signal
import sys
import threading
from pathlib import Path

from review_sentiment import paths
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.config_properties import model_api_allowed
from review_sentiment.serve.launcher import TorchServeProcess
from review_sentiment.serve.sandbox import Sandbox, start
from review_sentiment.settings import ServiceSettings


def _print_urls(
    endpoints: Endpoints, run_dir, auth: bool, bind: str = "127.0.0.1", extra: tuple[str, ...] = ()
) -> None:
    print(f"TorchServe is ready ({'token auth ON' if auth else 'token auth OFF'})")
    model = paths.model_name()
    print(f"  inference   {endpoints.inference_url}/predictions/{model}")
    for name in extra:
        print(f"  also        {endpoints.inference_url}/predictions/{name}")
    print(f"  management  {endpoints.management_url}/models/{model}")
    if model_api_allowed(bind, auth):
        print("  versions    review-sentiment describe | rollout <checkpoint or .mar> | rollback")
    else:
        print("  versions    fixed: the model API is off (token auth off, or management not on loopback)")
    print(f"  metrics     {endpoints.metrics_url}")
    print(f"  gRPC        {endpoints.grpc_target}")
    if auth:
        print(f"  keys        {run_dir / 'key_file.json'}")
    print(f"  logs        {run_dir / 'logs'}")


def accurate_models(settings: ServiceSettings) -> dict[str, Path]:
    """{"sentiment-accurate": its .mar} when SENTIMENT_ACCURATE_MODEL is on, else nothing: the
    default server registers the fast model alone."""
    if not settings.accurate_model:
        return {}
    mar = settings.model_store / f"{paths.ACCURATE_MODEL_NAME}.mar"
    if not mar.is_file():
        sys.exit(f"SENTIMENT_ACCURATE_MODEL is on but {mar} is missing: build it with `make archive-accurate`")
    return {paths.ACCURATE_MODEL_NAME: mar}


def main(argv: list[str] | None = None) -> None:
    settings = ServiceSettings.from_env()  # read now: SENTIMENT_BIND, SENTIMENT_AUTH, SENTIMENT_RUN_DIR, ...
    parser = argparse.ArgumentParser(description="Run TorchServe for the sentiment model.")
    sub = parser.add_subparsers(dest="command", required=True)
    start_ = sub.add_parser("start")
    start_.add_argument(
        "--models", default=f"{settings.model_name}={settings.model_name}.mar", help="name=file.mar of the model store"
    )
    start_.add_argument("--bind", default=settings.bind, help="listen address (default: SENTIMENT_BIND or 127.0.0.1)")
    start_.add_argument(
        "--no-auth",
        action="store_true",
        default=not settings.auth,
        help="turn token authorization off (trusted networks only); also SENTIMENT_AUTH=off",
    )
    start_.add_argument("--timeout", type=float, default=300)
    start_.add_argument("--wait", action="store_true", help="stay in the foreground until stopped (containers)")
    sub.add_parser("stop")
    args = parser.parse_args(argv)

    if args.command == "stop":
        print("TorchServe stopped" if TorchServeProcess().stop() else "TorchServe was not running")
        return
    if not re.fullmatch(r"[\w.-]+=[\w.-]+\.mar", args.models):
        sys.exit(f"--models must look like name=file.mar, got {args.models!r}")
    name, archive = args.models.split("=")
    auth = not args.no_auth
    extra = accurate_models(settings)
    server = start(
        settings.model_store / archive,
        settings.run_dir,
        auth=auth,
        endpoints=Endpoints.from_env(),
        bind=args.bind,
        model_name=name,
        timeout=args.timeout,
        extra_models=extra,
    )
    _print_urls(server.endpoints, server.run_dir, auth, args.bind, tuple(extra))
    if args.wait:
        _wait_until_stopped(server)


def _wait_until_stopped(server: Sandbox) -> None:
    """Block while TorchServe runs; SIGTERM or Ctrl-C stops it cleanly (container entry point)."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    while server.process.is_running() and not stopping.wait(2):
        pass
    server.stop()


if __name__ == "__main__":
    main()
