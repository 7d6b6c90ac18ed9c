"""Start a TorchServe with special settings (small queue, short timeouts) and find its processes.

The server is the project's own launcher (`TorchServeProcess`) on a copy of
config/config.properties with a few values replaced, and a .mar built with a model config of
the caller's; used by the fault and security tests and by the soak script.
"""

from __future__ import annotations

from pathlib import Path

import psutil
import yaml

from review_sentiment import paths
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.server import TorchServeProcess, override_properties, worker_processes

CONFIG_TEMPLATE = paths.CONFIG_DIR / "config.properties"


def start_server(
    folder: Path,
    checkpoint: Path,
    model_config: dict | Path = paths.MODEL_CONFIG,
    properties: dict[str, str] | None = None,
    auth: bool = True,
    timeout: float = 240,
) -> TorchServeProcess:
    """A TorchServe serving `checkpoint` as 'sentiment' from `folder` (store, config, run dir)."""
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(model_config, dict):
        config_path = folder / "model-config.yaml"
        config_path.write_text(yaml.safe_dump(model_config))
        model_config = config_path
    store = folder / "model_store"
    build_archive(checkpoint, store, paths.MODEL_NAME, model_config)
    config_file = folder / "config.properties"
    config_file.write_text(override_properties(CONFIG_TEMPLATE.read_text(), properties or {}))
    process = TorchServeProcess(run_dir=folder / "run", model_store=store, config_file=config_file)
    process.start(f"{paths.MODEL_NAME}={paths.MODEL_NAME}.mar", Endpoints.free(), auth=auth, timeout=timeout)
    return process


def frontend(server: TorchServeProcess) -> psutil.Process:
    pid = server.pid()
    if pid is None:
        raise RuntimeError(f"no TorchServe runs from {server.run_dir}")
    return psutil.Process(pid)


def workers(server: TorchServeProcess) -> list[psutil.Process]:
    """The Python worker processes (children of the Java frontend running model_service_worker)."""
    return worker_processes(frontend(server).pid)


def rss_mib(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20
