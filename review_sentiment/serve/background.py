"""Run a helper process (the Gradio UI) in the background with a pid file, for `make serve`.

python -m review_sentiment.serve.background start ui --url http://127.0.0.1:7860 -- python -m ui.app
python -m review_sentiment.serve.background stop ui
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

import requests

from review_sentiment import paths
from review_sentiment.serve.processes import still_alive
from review_sentiment.waiting import wait_until


def _pid_file(name: str):
    return paths.run_dir() / f"{name}.pid"


def _started_at(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def running_pid(name: str) -> int | None:
    """The pid in the pid file if that process is still the one we started: the file holds its
    start time too, so a pid the system has since given to another program is not ours."""
    try:
        pid_text, started = _pid_file(name).read_text().split()
        pid = int(pid_text)
    except (OSError, ValueError):
        return None
    now = _started_at(pid)
    return pid if now is not None and abs(now - float(started)) < 0.01 else None


def start(name: str, command: list[str], url: str | None, timeout: float = 120) -> int:
    if running_pid(name):
        raise SystemExit(f"{name} is already running (pid {running_pid(name)}); `make stop` first")
    log_dir = paths.run_dir() / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    with open(log_dir / f"{name}.log", "ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)
    _pid_file(name).write_text(f"{process.pid} {_started_at(process.pid)!r}")

    def answers() -> bool:
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode}; see {log_dir / f'{name}.log'}")
        try:
            return requests.get(url, timeout=2).status_code < 500
        except requests.RequestException:  # not listening yet, or listening but too busy to answer
            return False

    if url and not wait_until(answers, timeout):
        stop(name)
        raise SystemExit(f"{name} did not answer at {url} within {timeout:.0f}s")
    return process.pid


def stop(name: str, timeout: float = 20) -> bool:
    pid = running_pid(name)
    _pid_file(name).unlink(missing_ok=True)
    if pid is None:
        return False
    try:
        os.killpg(pid, signal.SIGTERM)
        if still_alive([pid], timeout):
            os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it exited in between
    return True


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    command = argv[argv.index("--") + 1 :] if "--" in argv else []
    own = argv[: argv.index("--")] if "--" in argv else argv
    parser = argparse.ArgumentParser()
    parser.add_argument("action", choices=["start", "stop"])
    parser.add_argument("name")
    parser.add_argument("--url", help="wait until this URL answers")
    args = parser.parse_args(own)
    if args.action == "start":
        pid = start(args.name, command, args.url)
        print(f"{args.name} running (pid {pid})" + (f" at {args.url}" if args.url else ""))
    else:
        print(f"{args.name} stopped" if stop(args.name) else f"{args.name} was not running")


if __name__ == "__main__":
    main()
