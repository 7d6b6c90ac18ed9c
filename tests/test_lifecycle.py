"""Start and stop edge cases of the launcher (serve/launcher.py), the sandbox around it
(serve/sandbox.py) and the UI's background runner (serve/background.py): each gets a clear
message or a correct clean-up."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from review_sentiment.endpoints import Endpoints
from review_sentiment.serve import background, config_properties, launcher, processes, sandbox
from review_sentiment.serve.launcher import ServerError, TorchServeProcess


def sleeper(*, new_session: bool = False) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=new_session)


def test_a_port_in_use_is_named_before_starting(tmp_path):
    endpoints = Endpoints.free()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", endpoints.inference_port))
        squatter.listen()
        process = TorchServeProcess(run_dir=tmp_path / "run", model_store=tmp_path)
        with pytest.raises(ServerError, match=rf"already in use on 127.0.0.1: inference {endpoints.inference_port};"):
            process.start("sentiment=sentiment.mar", endpoints)
    assert not process.is_running()


def test_stop_sweeps_and_cleans_up_when_the_stop_command_hangs(tmp_path, monkeypatch):
    """`torchserve --stop` past its timeout: the frontend and its workers are still killed and
    the unpacked model removed, instead of TimeoutExpired skipping all of it."""
    frontend = sleeper()
    process = TorchServeProcess(run_dir=tmp_path / "run", model_store=tmp_path)
    process.tmp_dir.mkdir(parents=True)
    (process.tmp_dir / "unpacked-model").mkdir()
    monkeypatch.setattr(TorchServeProcess, "is_running", lambda self: True)
    monkeypatch.setattr(TorchServeProcess, "pid", lambda self: frontend.pid)

    def hangs(*args, timeout=None, **kwargs):
        raise subprocess.TimeoutExpired(args[0], timeout)

    monkeypatch.setattr(launcher.subprocess, "run", hangs)
    assert process.stop(timeout=1)
    assert frontend.wait(timeout=10) == -signal.SIGKILL
    assert not process.tmp_dir.exists()


def test_ctrl_c_while_starting_stops_what_was_started(tmp_path, monkeypatch):
    """Ctrl-C as `torchserve --start` runs: the launcher stops (sweeps) before the interrupt goes on."""
    stops = []
    monkeypatch.setattr(TorchServeProcess, "stop", lambda self, timeout=60: stops.append(self.run_dir) or True)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher.subprocess, "run", interrupted)
    process = TorchServeProcess(run_dir=tmp_path / "run", model_store=tmp_path)
    with pytest.raises(KeyboardInterrupt):
        process.start("sentiment=sentiment.mar", Endpoints.free())
    assert stops == [process.run_dir]


def test_the_sandbox_stops_and_removes_its_folder_whatever_ends_the_block(monkeypatch):
    """Ctrl-C or an error inside the block: the server is stopped and its temporary run folder removed."""
    started: list = []

    class Started:
        def __init__(self, run_dir):
            self.run_dir, self.stopped = run_dir, False
            (run_dir / "logs").mkdir()

        def stop(self) -> bool:
            self.stopped = True
            return True

    monkeypatch.setattr(
        sandbox, "start", lambda source, run_dir, **options: started.append(Started(run_dir)) or started[-1]
    )
    for interruption in (KeyboardInterrupt, RuntimeError):
        with pytest.raises(interruption), sandbox.sandbox(Path("sentiment.mar")):
            raise interruption
    assert len(started) == 2 and all(s.stopped and not s.run_dir.exists() for s in started)


def test_a_mar_keeps_its_own_model_config(tmp_path):
    with pytest.raises(ValueError, match="a .mar carries its own model-config"):
        sandbox.start(tmp_path / "sentiment.mar", tmp_path / "run", model_config={"batchSize": 4})


def test_overrides_change_config_properties_but_not_the_runs_addresses():
    endpoints = Endpoints.free()
    template = "# a comment=1\njob_queue_size=200\ninference_address=http://127.0.0.1:8080\n"
    overrides = {"job_queue_size": "8", "inference_address": "http://0.0.0.0:1", "vmargs": "-Xmx1g"}
    text = config_properties.render_config(template, endpoints, "127.0.0.1", auth=False, overrides=overrides)
    lines = text.splitlines()
    assert lines[:3] == [
        "# a comment=1",
        "job_queue_size=8",
        f"inference_address=http://127.0.0.1:{endpoints.inference_port}",
    ]
    assert "vmargs=-Xmx1g" in lines and "disable_token_authorization=true" in lines


def test_a_process_that_exits_in_between_is_not_an_error(tmp_path, monkeypatch):
    gone = sleeper()
    gone.kill()
    gone.wait()
    processes.kill([gone.pid])  # ProcessLookupError swallowed
    monkeypatch.setenv("SENTIMENT_RUN_DIR", str(tmp_path))
    ui = sleeper(new_session=True)
    background._pid_file("ui").write_text(f"{ui.pid} {background._started_at(ui.pid)!r}")
    real_killpg = os.killpg

    def exits_first(pid, sig):  # the process ends just before our signal reaches it
        ui.kill()
        ui.wait()
        real_killpg(pid, sig)

    monkeypatch.setattr(background.os, "killpg", exits_first)
    assert background.stop("ui")


def test_a_reused_pid_is_not_killed(tmp_path, monkeypatch):
    """The pid file names a pid the system has since given to another program: not ours."""
    monkeypatch.setenv("SENTIMENT_RUN_DIR", str(tmp_path))
    stranger = sleeper(new_session=True)
    try:
        started = background._started_at(stranger.pid)
        background._pid_file("ui").write_text(f"{stranger.pid} {started - 3600!r}")  # an older process's
        assert background.running_pid("ui") is None
        assert not background.stop("ui")
        assert stranger.poll() is None, "a stranger was killed"
        background._pid_file("ui").write_text(str(stranger.pid))  # an old-style file: not verifiable
        assert not background.stop("ui") and stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()


def test_a_slow_page_does_not_crash_the_start(tmp_path, monkeypatch):
    """The UI listens but does not answer within the 2 s read timeout (a busy machine): the
    runner keeps waiting, then says so, instead of crashing with ReadTimeout."""
    monkeypatch.setenv("SENTIMENT_RUN_DIR", str(tmp_path))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(listener.accept()), daemon=True).start()
    url = f"http://127.0.0.1:{listener.getsockname()[1]}/"
    command = [sys.executable, "-c", "import time; time.sleep(120)"]
    started = time.monotonic()
    with pytest.raises(SystemExit, match=rf"ui did not answer at {url} within 5s"):
        background.start("ui", command, url, timeout=5)
    assert time.monotonic() - started < 30 and accepted
    assert background.running_pid("ui") is None
    listener.close()


@pytest.mark.serving
def test_stop_finds_the_workers_of_a_dead_frontend(tmp_path, model_store):
    server = sandbox.start(model_store / "sentiment.mar", tmp_path / "run", timeout=180)
    process = server.process
    try:
        frontend = psutil.Process(server.frontend_pid)
        workers = [psutil.Process(pid) for pid in server.worker_pids()]
        assert workers
        # A worker that notices its frontend is gone may exit by itself (seen in CI), which made
        # this test racy; a stopped (hung) worker cannot, and is the orphan stop must sweep.
        for worker in workers:
            worker.suspend()
        frontend.kill()  # kill -9: its workers are left behind, re-parented
        frontend.wait(10)
        assert not process.is_running()
        assert set(processes.orphaned_workers(process.tmp_dir)) == {w.pid for w in workers}
    finally:
        assert server.stop()
    _, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive and not process.tmp_dir.exists()
