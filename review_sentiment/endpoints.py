"""Addresses of one TorchServe instance, shared by the server launcher and every client.

`make serve` writes them to <run dir>/endpoints.json; clients read that file, so tests and
alternative ports need no extra flags. Without the file, the defaults below apply, each
overridable by an environment variable (SENTIMENT_HOST, SENTIMENT_INFERENCE_PORT, ...).
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

from review_sentiment.core.env import ENV_PREFIX, env_name, read_settings


def is_loopback(host: str) -> bool:
    """Whether an address (or "localhost") is this machine's loopback: reachable from here only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Endpoints:
    # Host clients call (a server's endpoints.json names its own; this overrides it, e.g. in the UI container).
    host: str = "127.0.0.1"
    # TorchServe's REST inference API (/predictions, /explanations, /ping).
    inference_port: int = 8080
    # REST management API (register, scale, describe); keep it private.
    management_port: int = 8081
    # Prometheus metrics (/metrics).
    metrics_port: int = 8082
    # gRPC inference API.
    grpc_inference_port: int = 7070
    # gRPC management API.
    grpc_management_port: int = 7071

    @property
    def inference_url(self) -> str:
        return f"http://{self.host}:{self.inference_port}"

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.metrics_port}/metrics"

    @property
    def grpc_target(self) -> str:
        return f"{self.host}:{self.grpc_inference_port}"

    @classmethod
    def from_env(cls, environ=os.environ) -> Endpoints:
        return read_settings(cls, ENV_PREFIX, environ)

    @classmethod
    def load(cls, run_dir: Path, environ=os.environ) -> Endpoints:
        """The endpoints a running server recorded in `run_dir`, else the environment's."""
        recorded = run_dir / "endpoints.json"
        if not recorded.exists():
            return cls.from_env(environ)
        endpoints = cls(**json.loads(recorded.read_text()))
        # A client on another host (e.g. the UI container) names the server's host itself.
        host = environ.get(env_name(ENV_PREFIX, "host"))
        return replace(endpoints, host=host) if host else endpoints

    def ports(self) -> dict[str, int]:
        """Each listener's port by name ("inference", "grpc_inference", ...)."""
        return {f.name.removesuffix("_port"): getattr(self, f.name) for f in fields(self) if f.name.endswith("_port")}

    def save(self, run_dir: Path) -> None:
        (run_dir / "endpoints.json").write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def free(cls, host: str = "127.0.0.1") -> Endpoints:
        """Five currently free ports on `host` (for tests and side-by-side servers)."""
        sockets = []
        for _ in range(5):
            s = socket.socket()
            s.bind((host, 0))
            sockets.append(s)
        ports = [s.getsockname()[1] for s in sockets]
        for s in sockets:
            s.close()
        return cls(host, *ports)
