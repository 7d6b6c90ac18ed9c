"""Ray Serve 2.60.0 over the core: a local Ray cluster (GCS, raylet, Serve's controller), HTTP
through Serve's proxy actor (uvicorn), and `num_replicas` replica actors of one CPU each, each
batching with `@serve.batch` (max_batch_size and batch_wait_timeout_s are TorchServe's batchSize
and maxBatchDelay). No auth: Serve has none of its own.

    .venv-peers/bin/python -m benchmarks.systems.ray_serve_peer --checkpoint DIR --config CONFIG.json --port P
"""

from __future__ import annotations

import psutil

from benchmarks.systems.peer import Layout, PeerServer, classify_json, cmdline, load_classifier, read_config


def _role(process: psutil.Process) -> str:
    # Ray names its actor processes "ray::<Class>..." once they run.
    line = cmdline(process)
    return "frontend" if "ProxyActor" in line else "workers" if "ServeReplica" in line else "ray"


def system(config: dict) -> PeerServer:
    return PeerServer("ray-serve", "Ray Serve 2.60.0", __name__, "/", _role, config)


class Sentiment:
    """The replica: one classifier; requests batched by Serve's decorator (applied in main())."""

    def __init__(self, checkpoint: str, config: dict) -> None:
        self.classifier = load_classifier(checkpoint, config)

    async def classify(self, payloads: list[dict]) -> list[tuple[int, dict]]:
        return classify_json(self.classifier, payloads)

    async def __call__(self, request):
        from starlette.responses import JSONResponse

        status, body = await self.classify(await request.json())
        return JSONResponse(body, status_code=status)


def main() -> None:
    import threading

    import ray
    from ray import serve

    from benchmarks.systems.peer import server_args

    args = server_args("Ray Serve over the review sentiment core (benchmark peer).")
    config = read_config(args.config)
    layout = Layout.of(config)
    gpus = 1 if layout.device == "cuda" else 0  # the replicas share the one GPU, as TorchServe's workers
    ray.init(num_cpus=layout.workers * layout.threads, num_gpus=gpus, include_dashboard=False, log_to_driver=False)
    Sentiment.classify = serve.batch(max_batch_size=layout.batch_size, batch_wait_timeout_s=layout.delay_ms / 1000)(
        Sentiment.classify
    )
    deployment = serve.deployment(
        num_replicas=layout.workers,
        ray_actor_options={"num_cpus": layout.threads, "num_gpus": gpus / layout.workers},
        max_ongoing_requests=64,
    )(Sentiment)
    serve.start(http_options={"host": "127.0.0.1", "port": args.port})
    serve.run(deployment.bind(args.checkpoint, config), route_prefix="/")
    threading.Event().wait()  # serve until the harness stops the process group


if __name__ == "__main__":
    main()
