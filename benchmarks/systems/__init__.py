"""The systems under test, one module each, behind one interface: `System.start()` brings a
system up for a block and yields a `Running` (where it answers and in what request format, its
cold start, the processes whose memory and CPU are read); `Running.load()` drives one cell.

TorchServe (`torchserve.py`), the seed's Flask design (`flask_baseline.py`) and the inference
core in this process (`in_process.py`) implement it. A peer server (Triton, LitServe, BentoML,
Ray Serve: a small adapter over review_sentiment.core) is one more module here that starts it
and yields its targets and processes, and one line in `benchmarks/matrix.py`'s `SYSTEMS`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from benchmarks import wrk
from review_sentiment.client.load_driver import Result, Target, Window, run_load
from review_sentiment.serve.processes import process_usage

FIRST_REVIEW = "Arrived quickly and works as described."
# A process role ("frontend", "process") names one pid; a role of several ("workers") a list.
Processes = dict[str, int | list[int]]


@dataclass
class Running:
    """A system under test, until its block ends."""

    # Per load client ("rest", "grpc"): the address, headers and request format (Target). wrk
    # drives the "rest" target.
    targets: dict[str, Target]
    cold_start_s: float  # start command to first answer
    processes: Callable[[], Processes]  # read at each look: workers may be replaced
    max_requests: int | None = None  # cap per cell, for systems too slow to fill a window

    def memory(self) -> dict:
        """Resident memory now, in MiB: `<role>_mib`, a float or a list as in `processes`."""
        return {f"{role}_mib": _rss(pids) for role, pids in self.processes().items()}

    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds so far per role (all of its processes and threads): differences over a
        window give CPU per request."""
        return {role: sum(process_usage(pid).cpu_s for pid in _listed(pids)) for role, pids in self.processes().items()}

    def load(self, client: str, texts: Sequence[str], clients: int, window: Window, processes: int = 1) -> Result:
        """One cell: `clients` concurrent clients for the window, through `client` ("wrk",
        "rest" or "grpc": the Python load driver, over `processes` processes)."""
        if self.max_requests is not None:
            window = dataclasses.replace(window, max_requests=self.max_requests)
        if client == "wrk":
            return wrk.run_wrk(self.targets["rest"], texts, clients, window, self.cpu_seconds)
        return run_load(self.targets[client], texts, clients, window, processes)


def _listed(pids: int | list[int]) -> list[int]:
    return pids if isinstance(pids, list) else [pids]


def _rss(pids: int | list[int]) -> float | list[float]:
    sizes = [process_usage(pid).rss_mib for pid in _listed(pids)]
    return sizes if isinstance(pids, list) else sizes[0]


class System(Protocol):
    """What the harness needs of a system under test."""

    name: str  # its key in the reports: "torchserve", "flask", ...
    title: str  # its name in tables and plots
    clients: tuple[str, ...]  # load clients it answers, the preferred first ("wrk", "rest", "grpc", "core")
    lengths: tuple[int, ...] | None  # review lengths it is measured at; None: every length of the run

    def start(self, checkpoint: Path, work: Path) -> AbstractContextManager[Running]:
        """Serve `checkpoint` until the block ends, logs under `work`; stopped whatever ends it."""
        ...
