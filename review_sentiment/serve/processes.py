"""The one place that looks at processes: a TorchServe's frontend and Python workers (found,
measured, swept) and the waiting and killing that stopping them needs."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass
from pathlib import Path

import psutil

from review_sentiment.waiting import wait_until

MIB = 2**20
WORKER_MARK = "model_service_worker"  # in the command line of TorchServe's Python workers


def pid_exists(pid: int) -> bool:
    """Alive: a zombie (exited, not yet reaped by its parent, e.g. our own child) is not."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def still_alive(pids: list[int], timeout: float) -> list[int]:
    """Wait up to `timeout` seconds for `pids` to exit; the ones that did not."""
    alive = list(pids)

    def all_gone() -> bool:
        nonlocal alive
        alive = [pid for pid in alive if pid_exists(pid)]
        return not alive

    wait_until(all_gone, timeout, interval_s=0.2)
    return alive


def kill(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):  # it exited in between: what we wanted
            os.kill(pid, signal.SIGKILL)


def descendants(pid: int) -> list[int]:
    try:
        return [child.pid for child in psutil.Process(pid).children(recursive=True)]
    except psutil.Error:
        return []


def worker_processes(frontend_pid: int) -> list[psutil.Process]:
    """The Python workers under a TorchServe frontend, by pid."""
    found = []
    for child in psutil.Process(frontend_pid).children(recursive=True):
        try:
            if any(WORKER_MARK in part for part in child.cmdline()):
                found.append(child)
        except psutil.Error:  # exited while listed
            continue
    return sorted(found, key=lambda process: process.pid)


def orphaned_workers(tmp_dir: Path) -> list[int]:
    """Workers of a frontend that died (re-parented, so not its children any more): found by the
    TMPDIR the launcher gave TorchServe, which its workers inherit; only this run's."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            cmdline = process.info["cmdline"] or []
            if any(WORKER_MARK in part for part in cmdline) and process.environ().get("TMPDIR") == str(tmp_dir):
                found.append(process.pid)
        except psutil.Error:
            continue
    return found


@dataclass(frozen=True)
class ProcessUsage:
    pid: int
    rss_mib: float  # resident memory now
    cpu_s: float  # CPU time so far, user + system, all threads


def process_usage(process: psutil.Process | int) -> ProcessUsage:
    process = process if isinstance(process, psutil.Process) else psutil.Process(process)
    with process.oneshot():
        times = process.cpu_times()
        return ProcessUsage(process.pid, process.memory_info().rss / MIB, times.user + times.system)


def rss_mib(pid: int) -> float | None:
    """Resident memory of a process of this machine now; None when it is not here (or gone)."""
    try:
        return psutil.Process(pid).memory_info().rss / MIB
    except psutil.Error:
        return None


@dataclass(frozen=True)
class ServerUsage:
    """One look at a TorchServe: its Java frontend and each Python worker."""

    frontend: ProcessUsage
    workers: list[ProcessUsage]  # by pid

    @property
    def worker_pids(self) -> list[int]:
        return [worker.pid for worker in self.workers]

    def memory(self) -> dict:
        """Resident memory in MiB, as the benchmarks' reports record it."""
        return {"frontend_mib": self.frontend.rss_mib, "workers_mib": [w.rss_mib for w in self.workers]}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far of the frontend and of all workers together: differences over a
        window give CPU per request."""
        return {"frontend": self.frontend.cpu_s, "workers": sum(w.cpu_s for w in self.workers)}


def server_usage(frontend_pid: int) -> ServerUsage:
    """Raises psutil.Error if the frontend is gone, or a worker exits between listing and reading."""
    return ServerUsage(process_usage(frontend_pid), [process_usage(w) for w in worker_processes(frontend_pid)])
