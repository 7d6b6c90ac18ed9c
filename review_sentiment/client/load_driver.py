"""The one load driver, closed-loop: a fixed number of clients, each sending its next request as
soon as its last one is answered, for a fixed time (or request budget); errors are counted.
The benchmarks (benchmarks/) and the soak (reliability/soak.py) both drive servers with it.

REST goes through httpx (async), gRPC through grpc.aio with the stubs generated from
TorchServe's protos. A GPU server answers faster than one Python process can send, so the
clients can be spread over several processes (`processes`), each with its own event loop.

Only requests answered inside the measured window count: the warm-up before it is discarded,
and requests still in flight when it closes are awaited but not counted (as wrk does).

The loop itself, `closed_loop`, knows nothing of texts or protocols: the soak runs its mixed
good and bad requests through it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import multiprocessing
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np

# (start, end, ok) of one request, on the system-wide monotonic clock (comparable across processes).
Sample = tuple[float, float, bool]
Send = Callable[[str], Awaitable[bool]]
Outcome = TypeVar("Outcome")


def plain_text(review: str) -> bytes:
    return review.encode("utf-8")


@dataclass(frozen=True)
class Target:
    """Where requests go: a REST URL (Flask or TorchServe) or a TorchServe gRPC address."""

    protocol: str  # "rest" or "grpc"
    address: str  # URL for REST, host:port for gRPC
    headers: tuple[tuple[str, str], ...] = ()  # e.g. TorchServe's Authorization header
    model: str = "sentiment"  # gRPC model name
    # REST request format: a review as the body, and its type (a server that wants JSON gives its
    # own module-level function: client processes receive it pickled).
    content_type: str = "text/plain; charset=utf-8"
    body: Callable[[str], bytes] = plain_text


@dataclass(frozen=True)
class Window:
    warmup_s: float
    duration_s: float
    max_requests: int | None = None  # stop early after this many requests (slow systems)


@dataclass(frozen=True)
class Result:
    requests: int  # answered inside the window, errors included
    errors: int
    seconds: float
    req_per_s: float  # successful answers per second
    p50_ms: float
    p95_ms: float
    p99_ms: float
    # CPU per answered request by process ("frontend", "workers", "client"; "process" in-process),
    # where the harness measured it.
    cpu_ms_per_request: dict[str, float] | None = None

    def to_dict(self) -> dict:
        """JSON-ready: NaN (no successful answer) becomes None."""
        return {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in asdict(self).items()}


def summarize(samples: Sequence[Sample], window_start: float, stop_at: float) -> Result:
    """Figures over the requests answered between `window_start` and the window's end: the
    deadline, or the last answer where a request budget ended the run earlier."""
    if not samples:
        return Result(0, 0, 0.0, 0.0, math.nan, math.nan, math.nan)
    window_end = min(stop_at, max(end for _, end, _ in samples))
    inside = [(start, end, ok) for start, end, ok in samples if window_start <= end <= window_end]
    ok_latencies = np.array([end - start for start, end, ok in inside if ok]) * 1000
    seconds = max(window_end - window_start, 1e-9)
    p50, p95, p99 = np.percentile(ok_latencies, [50, 95, 99]) if len(ok_latencies) else (math.nan,) * 3
    errors = sum(not ok for *_, ok in inside)
    return Result(len(inside), errors, seconds, len(ok_latencies) / seconds, float(p50), float(p95), float(p99))


@contextlib.asynccontextmanager
async def _rest_sender(target: Target, concurrency: int) -> AsyncIterator[Send]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    headers = {**dict(target.headers), "Content-Type": target.content_type}
    async with httpx.AsyncClient(limits=limits, timeout=300, headers=headers) as client:

        async def send(text: str) -> bool:
            response = await client.post(target.address, content=target.body(text))
            # A prediction, not an error body (TorchServe's or the handler's 4xx/5xx JSON).
            return response.status_code == 200 and b'"label"' in response.content

        yield send


@contextlib.asynccontextmanager
async def _grpc_sender(target: Target, concurrency: int) -> AsyncIterator[Send]:
    import grpc

    from review_sentiment.client.protos import ensure_stubs

    ensure_stubs()
    from review_sentiment.client.grpc_stubs import inference_pb2, inference_pb2_grpc

    metadata = tuple((k.lower(), v) for k, v in target.headers)
    async with grpc.aio.insecure_channel(target.address) as channel:
        stub = inference_pb2_grpc.InferenceAPIsServiceStub(channel)

        async def send(text: str) -> bool:
            request = inference_pb2.PredictionsRequest(model_name=target.model, input={"data": text.encode("utf-8")})
            response = await stub.Predictions(request, metadata=metadata, timeout=300)
            # TorchServe 0.12's gRPC answers OK even for a refused request: look at the body.
            return b'"label"' in response.prediction

        yield send


async def closed_loop(
    clients: Sequence[Callable[[], Awaitable[Outcome]]],
    stop_at: float,
    budget: int | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> list[tuple[float, float, Outcome]]:
    """Each client sends its next request as soon as its last one is answered, until `stop_at`
    (monotonic clock), until `budget` requests were sent in all, or until `stop()` says so (a
    test ending the load when its rollout is done); (start, end, outcome) of each request, in
    the order they were answered. A client handles its own failures."""
    samples: list[tuple[float, float, Outcome]] = []
    issued = 0

    async def client(request: Callable[[], Awaitable[Outcome]]) -> None:
        nonlocal issued
        while time.monotonic() < stop_at and not stop() and (budget is None or issued < budget):
            issued += 1
            start = time.monotonic()
            outcome = await request()
            samples.append((start, time.monotonic(), outcome))

    await asyncio.gather(*(client(request) for request in clients))
    return samples


async def _drive(
    target: Target,
    texts: Sequence[str],
    clients: range,
    stride: int,
    window: Window,
    budget: int | None,
    ready: Callable[[], None] = lambda: None,
) -> tuple[float, list[Sample]]:
    """Run `clients` (client k sends texts k, k + stride, ...) until the window closes; returns
    the start time and the samples. `ready` is called once connected-ready, just before the start."""
    sender = _rest_sender if target.protocol == "rest" else _grpc_sender
    async with sender(target, len(clients)) as send:

        def client(first: int) -> Callable[[], Awaitable[bool]]:
            order = itertools.count(first, stride)

            async def request() -> bool:
                try:
                    return await send(texts[next(order) % len(texts)])
                except Exception:  # refused, reset, timed out: whatever the failure, it is an error
                    return False

            return request

        ready()
        start_at = time.monotonic()
        samples = await closed_loop(
            [client(k) for k in clients], start_at + window.warmup_s + window.duration_s, budget
        )
    return start_at, samples


def _client_process(args: tuple, barrier, queue) -> None:
    """One of several client processes: all start together when every one is ready."""
    _, samples = asyncio.run(_drive(*args, ready=lambda: barrier.wait(timeout=300)))
    queue.put(samples)


def run_load(target: Target, texts: Sequence[str], concurrency: int, window: Window, processes: int = 1) -> Result:
    """Hold `concurrency` requests in flight for window.warmup_s + window.duration_s seconds,
    spread over `processes` client processes; figures for the window after the warm-up."""
    processes = max(1, min(processes, concurrency))
    budget = None if window.max_requests is None else math.ceil(window.max_requests / processes)
    jobs = [
        (target, list(texts), range(p, concurrency, processes), concurrency, window, budget) for p in range(processes)
    ]
    if processes == 1:
        start_at, samples = asyncio.run(_drive(*jobs[0]))
    else:
        # spawn, not fork: the parent may hold torch threads or a gRPC channel.
        context = multiprocessing.get_context("spawn")
        barrier, queue = context.Barrier(processes + 1), context.Queue()
        workers = [context.Process(target=_client_process, args=(job, barrier, queue)) for job in jobs]
        for worker in workers:
            worker.start()
        try:
            barrier.wait(timeout=300)  # every process has imported and connected: the clock starts
            start_at = time.monotonic()
            samples = [s for _ in workers for s in queue.get(timeout=window.warmup_s + window.duration_s + 600)]
        finally:
            for worker in workers:
                worker.join(timeout=10)
                if worker.is_alive():
                    worker.kill()
    window_start = start_at + window.warmup_s
    return summarize(samples, window_start, window_start + window.duration_s)


def prime(target: Target, texts: Sequence[str], requests: int = 3) -> Result:
    """A few untimed requests before a target's first cell: the first call of a protocol pays
    for connecting and for the server's lazy set-up (gRPC in the Java frontend)."""
    return run_load(target, texts, 1, Window(0.0, 300.0, max_requests=requests))
