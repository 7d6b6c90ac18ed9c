"""NVIDIA Triton through PyTriton 0.7.0 (it ships the Triton server binary, 2.51.0) over the core.
The server (C++) takes REST and gRPC and batches with its dynamic batcher (max_batch_size and
max_queue_delay are TorchServe's batchSize and maxBatchDelay); each batch goes through a Python
backend stub to one of `workers` model instances, which PyTriton runs as threads of this
adapter's process (one torch thread each). REST: Triton's generate endpoint, which takes the same
{"text": review} and answers the outputs as keys ("label", "score", and "probabilities" as JSON
text) beside model_name and model_version. gRPC: KServe v2 ModelInfer, the text as a BYTES tensor.
No auth.

    .venv-peers/bin/python -m benchmarks.systems.triton_peer --checkpoint DIR --config C.json --port P --grpc-port G
    .venv-peers/bin/python -m benchmarks.systems.triton_peer load ADDRESS CLIENTS WARMUP DURATION TEXTS.json
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import psutil

from benchmarks.systems import Running, peer
from benchmarks.systems.peer import Layout, PeerServer, cmdline
from review_sentiment import paths
from review_sentiment.client.load_driver import Result, Window

MODEL = "sentiment"
MODULE = "benchmarks.systems.triton_peer"  # not __name__: "__main__" when run


def _role(process: psutil.Process) -> str:
    line = cmdline(process)
    return "proxy" if "backend_stub" in line else "frontend" if "tritonserver" in line else "workers"


@dataclass
class TritonRunning(Running):
    """gRPC cells go through a client in the peers' venv (Triton's stubs ship with tritonclient)."""

    def load(self, client: str, texts: Sequence[str], clients: int, window: Window, processes: int = 1) -> Result:
        if client != "grpc":
            return super().load(client, texts, clients, window, processes)
        address, timing = self.targets["grpc"].address, [str(window.warmup_s), str(window.duration_s)]
        with tempfile.TemporaryDirectory(prefix="sentiment-triton-") as tmp:
            (Path(tmp) / "texts.json").write_text(json.dumps(list(texts)))
            command = [str(peer.peer_python()), "-m", MODULE, "load", address, str(clients), *timing]
            command.append(f"{tmp}/texts.json")
            out = subprocess.run(command, cwd=paths.REPO, capture_output=True, text=True, check=True).stdout
        return Result(**json.loads(out.splitlines()[-1]))


class TritonServer(PeerServer):
    def make_running(self, endpoints, cold_start: float, root: int) -> Running:
        plain = super().make_running(endpoints, cold_start, root)
        return TritonRunning(plain.targets, plain.cold_start_s, plain.processes)


def system(config: dict) -> PeerServer:
    path = f"/v2/models/{MODEL}/generate"
    return TritonServer("triton", "Triton (PyTriton 0.7.0)", MODULE, path, _role, config, True, ("wrk", "grpc"))


def serve() -> None:
    import numpy as np
    from pytriton.decorators import batch
    from pytriton.model_config import DynamicBatcher, ModelConfig, Tensor
    from pytriton.triton import Triton, TritonConfig

    args = peer.server_args("Triton (PyTriton) over the review sentiment core (benchmark peer).")
    config = peer.read_config(args.config)
    layout = Layout.of(config)
    classifier = peer.load_classifier(args.checkpoint, config)  # one model, shared by the instances' threads

    @batch
    def infer(text: np.ndarray) -> dict[str, np.ndarray]:
        answered = peer.classify_json(classifier, [{"text": t[0].decode("utf-8")} for t in text])
        if any(status != 200 for status, _ in answered):  # PyTriton answers a batch or fails it
            raise ValueError(next(body for status, body in answered if status != 200)["message"])
        answers = [body for _, body in answered]
        return {
            "label": np.array([[str(a.get("label", "")).encode()] for a in answers], dtype=np.bytes_),
            "score": np.array([[a.get("score", np.nan)] for a in answers], dtype=np.float32),
            "probabilities": np.array([[json.dumps(a["probabilities"]).encode()] for a in answers], dtype=np.bytes_),
        }

    batcher = DynamicBatcher(max_queue_delay_microseconds=int(layout.delay_ms * 1000))
    ports = {"http_port": args.port, "grpc_port": args.grpc_port, "metrics_port": 0, "allow_metrics": False}
    triton_config = TritonConfig(http_address="127.0.0.1", grpc_address="127.0.0.1", **ports)
    with Triton(config=triton_config) as triton:
        triton.bind(
            MODEL,
            [infer] * layout.workers,  # model instances
            inputs=[Tensor(name="text", dtype=bytes, shape=(1,))],
            outputs=[Tensor(name=n, dtype=t, shape=(1,)) for n, t in (("label", bytes), ("score", np.float32))]
            + [Tensor(name="probabilities", dtype=bytes, shape=(1,))],
            config=ModelConfig(max_batch_size=layout.batch_size, batcher=batcher),
            strict=False,
        )
        triton.serve()


def load(address: str, clients: int, warmup_s: float, duration_s: float, texts_file: str) -> Result:
    """The closed-loop load driver over Triton's gRPC (KServe v2), CPU of this client included."""
    import grpc
    from tritonclient.grpc import service_pb2, service_pb2_grpc

    from review_sentiment.client.load_driver import closed_loop, summarize

    texts = [t.encode("utf-8") for t in json.loads(Path(texts_file).read_text())]

    async def drive() -> tuple[list, float, float]:
        async with grpc.aio.insecure_channel(address) as channel:
            stub = service_pb2_grpc.GRPCInferenceServiceStub(channel)
            tensor = service_pb2.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[1, 1])

            def client(first: int):
                order = iter(range(first, 1 << 40, clients))

                async def request() -> bool:
                    text = texts[next(order) % len(texts)]
                    raw = len(text).to_bytes(4, "little") + text
                    message = service_pb2.ModelInferRequest(model_name=MODEL, inputs=[tensor], raw_input_contents=[raw])
                    try:
                        reply = await stub.ModelInfer(message, timeout=300)
                    except grpc.RpcError:
                        return False
                    return any(o.name == "label" for o in reply.outputs) and len(reply.raw_output_contents) == 3

                return request

            start = time.monotonic()
            cpu = [0.0]
            asyncio.get_running_loop().call_later(warmup_s, lambda: cpu.__setitem__(0, time.process_time()))
            samples = await closed_loop([client(k) for k in range(clients)], start + warmup_s + duration_s)
            return samples, start, time.process_time() - cpu[0]

    samples, start, cpu_s = asyncio.run(drive())
    result = summarize(samples, start + warmup_s, start + warmup_s + duration_s)
    return Result(**{**asdict(result), "cpu_ms_per_request": {"client": 1000 * cpu_s / max(1, result.requests)}})


if __name__ == "__main__":
    if sys.argv[1:2] == ["load"]:
        address, clients, warmup, duration, texts_file = sys.argv[2:7]
        print(json.dumps(asdict(load(address, int(clients), float(warmup), float(duration), texts_file))))
    else:
        serve()
