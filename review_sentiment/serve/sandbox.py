"""A TorchServe for one job: the tests' fixtures, the benchmarks, the soak, and `review-sentiment serve`.

    with sandbox(checkpoint, model_config={...}, properties={"job_queue_size": "8"}) as server:
        server.client.predict("Lovely colour")
        server.usage().memory()

`start()` archives a checkpoint folder (or takes a built .mar), starts TorchServe from a run
folder on free ports (the launcher, launcher.py) and returns a `Sandbox`; `Sandbox.stop()` ends
it. `sandbox()` wraps the pair so that processes and temporary folders go whatever happens in
the block, Ctrl-C included. `review-sentiment serve` calls `start()` itself, for a server that
outlives the command; `review-sentiment stop` stops it from its run folder.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from review_sentiment import paths
from review_sentiment.client.keys import KeyFile, bearer
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.archive import build_archive
from review_sentiment.serve.launcher import ServerError, TorchServeProcess
from review_sentiment.serve.processes import ServerUsage, server_usage, worker_processes


@dataclass
class Sandbox:
    """A running TorchServe: where it listens, its keys, a client, its processes."""

    process: TorchServeProcess
    endpoints: Endpoints
    auth: bool
    started_at: float  # time.monotonic() of the start command, after any archive was built
    client: TorchServeClient = field(init=False)  # the project's REST client, ready to use

    def __post_init__(self) -> None:
        self.client = self.new_client()

    @property
    def run_dir(self) -> Path:
        return self.process.run_dir

    @property
    def log_dir(self) -> Path:
        return self.process.log_dir

    @property
    def model_store(self) -> Path:
        return self.process.model_store

    @property
    def key_file(self) -> Path | None:
        return self.process.key_file if self.auth else None

    def keys(self) -> dict[str, str]:
        """The keys as the file holds them now ("inference", "management", "API"); none with auth off."""
        return KeyFile(self.key_file).current() if self.auth else {}

    def inference_headers(self) -> dict[str, str]:
        """What a client outside the project (wrk, httpx, gRPC metadata) sends to be let in."""
        return bearer(self.keys().get("inference"))

    def new_client(self, **options) -> TorchServeClient:
        """A fresh REST client (own key cache and session); `options` as TorchServeClient's."""
        return TorchServeClient.for_run_dir(self.run_dir, **options)

    @property
    def frontend_pid(self) -> int:
        pid = self.process.pid()
        if pid is None:
            raise ServerError(f"no TorchServe runs from {self.run_dir}")
        return pid

    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in worker_processes(self.frontend_pid)]

    def usage(self) -> ServerUsage:
        """Resident memory and CPU seconds of the frontend and each worker, now."""
        return server_usage(self.frontend_pid)

    def stop(self) -> bool:
        """Stop TorchServe and its workers, remove the unpacked model; True if it was running."""
        return self.process.stop()


def _model_config_file(model_config: dict | Path, run_dir: Path) -> Path:
    if isinstance(model_config, dict):
        path = run_dir / "model-config.yaml"
        path.write_text(yaml.safe_dump(model_config))
        return path
    return Path(model_config)


def _in_store(mar: Path, store: Path) -> Path:
    """`mar` as a file of `store` (TorchServe loads from one model store): a link to it where it
    lies elsewhere, never a copy of a 1.2 GB archive."""
    if not mar.is_file():
        raise FileNotFoundError(f"no model archive {mar}")
    if mar.resolve().parent == store.resolve():
        return mar
    link = store / mar.name
    if link.is_symlink() or link.exists():
        if link.resolve() != mar.resolve():
            raise FileExistsError(f"{link} exists and is not {mar}")
        return link
    link.symlink_to(mar.resolve())
    return link


def start(
    source: Path,
    run_dir: Path,
    *,
    model_config: dict | Path | None = None,
    properties: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    auth: bool = True,
    endpoints: Endpoints | None = None,
    bind: str = "127.0.0.1",
    model_name: str | None = None,
    timeout: float = 240,
    extra_models: Mapping[str, Path] | None = None,
) -> Sandbox:
    """TorchServe serving `source` as `model_name` from `run_dir`, once a worker is READY.

    `source`: a checkpoint folder, archived into run_dir/model_store with `model_config` (a
    model-config.yaml or its dict; the project's by default), or a built .mar, which carries its
    own. `properties`: config.properties keys to override; `env`: added to the environment of
    the frontend and its workers; `auth`: token authorization; `endpoints`: free ports unless given.
    `extra_models`: more models to register beside it, name -> built .mar (`sentiment-accurate`);
    start-up waits for a READY worker of each.
    """
    source, run_dir, model_name = Path(source), Path(run_dir), model_name or paths.model_name()
    run_dir.mkdir(parents=True, exist_ok=True)
    if source.suffix == ".mar":
        if model_config is not None:
            raise ValueError("a .mar carries its own model-config: pass a checkpoint folder to set one")
        mar = source
    else:
        config_file = _model_config_file(model_config or paths.MODEL_CONFIG, run_dir)
        mar = build_archive(source, run_dir / "model_store", model_name, config_file)
    models = {model_name: mar.name}
    for name, extra in (extra_models or {}).items():
        models[name] = _in_store(Path(extra), mar.parent).name
    process = TorchServeProcess(run_dir, mar.parent, env=env)
    started_at = time.monotonic()
    # On failure, start() stops what it started.
    endpoints = process.start(
        ",".join(f"{name}={file}" for name, file in models.items()),
        endpoints or Endpoints.free(),
        bind,
        auth,
        timeout,
        properties=properties,
    )
    try:
        return Sandbox(process, endpoints, auth, started_at)
    except BaseException:
        process.stop()
        raise


@contextlib.contextmanager
def sandbox(source: Path, run_dir: Path | None = None, **options) -> Iterator[Sandbox]:
    """`start()` for the block, always stopped at its end. Without `run_dir` the server runs from
    a temporary folder, removed at the end too; a given one is kept (its logs, for a look after)."""
    own = run_dir is None
    folder = Path(tempfile.mkdtemp(prefix="sentiment-sandbox-")) if own else Path(run_dir)
    try:
        server = start(source, folder, **options)
        try:
            yield server
        finally:
            server.stop()
    finally:
        if own:
            shutil.rmtree(folder, ignore_errors=True)
