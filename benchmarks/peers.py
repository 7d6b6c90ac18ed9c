"""`--peers`: TorchServe against the servers a user would pick instead (Triton through PyTriton,
LitServe, BentoML, Ray Serve), each a small adapter over the same core (benchmarks/systems/*_peer.py),
in one run.

Every system serves the same checkpoint with the same handler settings (precision, max_length),
TorchServe's batching (batchSize, maxBatchDelay) and worker layout (2 x 1 thread here), or each
server's closest setting (`SETTINGS`); the same JSON request ({"text": review}); auth off, for
TorchServe too. In each round every system is started fresh and measured through wrk at 16 clients
and at a lone client, at 100 and 667 characters; Triton and TorchServe also over gRPC at 16
(the Python load driver). Rounds alternate the order of the systems, so drift on a shared machine
falls on all of them. Each cell records requests/s, p50/p95/p99, errors and CPU per request by
process role. Then the stack's ceiling: each system with the tiny model (2 layers, dim 32),
where almost all the CPU is the server's own. `--profile` samples the fastest peer and TorchServe
with py-spy at the length where the gap is widest, when it is over 10%.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from benchmarks import stacks, wrk
from benchmarks.reviews import SEED_LENGTH, reviews
from benchmarks.systems import Running, System
from benchmarks.systems import peer as peers
from benchmarks.systems.torchserve import TorchServe
from review_sentiment.client.load_driver import Result, Window, prime
from review_sentiment.progress import log
from review_sentiment.serve.model_config import model_config

LENGTHS = (100, SEED_LENGTH)
CLIENTS = (16, 1)
GRPC_CLIENTS = 16
CEILING_CLIENTS = 16
TORCHSERVE = "torchserve"
PEERS = ("triton", "litserve", "bentoml", "ray-serve")
SYSTEMS = (TORCHSERVE, *PEERS)  # --peer-systems
GOAL_THROUGHPUT, GOAL_LATENCY, PROFILE_GAP = 0.9, 1.2, 0.10
SPY_RATE = 100

# How each system gets TorchServe's batching and layout (the closest setting where it differs).
SETTINGS = {
    TORCHSERVE: "batchSize 8, maxBatchDelay 5 ms; 2 workers x 1 torch thread behind the Java frontend; token auth off",
    "triton": "dynamic batcher: max_batch_size 8, max_queue_delay 5 ms; 2 model instances, threads of one "
    "Python process (1 torch thread each) behind Python backend stubs",
    "litserve": "max_batch_size 8, batch_timeout 5 ms; 2 worker processes (workers_per_device) x 1 torch "
    "thread, 1 API server",
    "bentoml": "adaptive batching, max_batch_size 8 (no fixed window: the dispatcher chooses the wait; "
    "max_latency_ms 60 s); 2 workers with 1 CPU each; request {'text': [review]}",
    "ray-serve": "@serve.batch max_batch_size 8, batch_wait_timeout_s 5 ms; 2 replicas x 1 CPU behind "
    "Serve's proxy; Ray's GCS, raylet and controller beside them",
}


def systems(config: dict, names: Sequence[str]) -> list[System]:
    from benchmarks.systems import bentoml_peer, litserve_peer, ray_serve_peer, triton_peer

    made: dict[str, System] = {
        TORCHSERVE: TorchServe(config, auth=False, title="TorchServe 0.12.0", clients=("wrk", "grpc")),
        "triton": triton_peer.system(config),
        "litserve": litserve_peer.system(config),
        "bentoml": bentoml_peer.system(config),
        "ray-serve": ray_serve_peer.system(config),
    }
    return [made[name] for name in names]


def _json_requests(running: Running) -> None:
    """TorchServe's REST target sends what the peers get: {"text": review} as application/json."""
    rest = running.targets["rest"]
    if rest.content_type != peers.JSON_TYPE:
        running.targets["rest"] = dataclasses.replace(rest, content_type=peers.JSON_TYPE, body=peers.json_body)


@dataclasses.dataclass(frozen=True)
class Load:
    """How cells are driven: REST through wrk where it is installed (else the Python driver over
    `processes` processes, as on the GPU machine); gRPC at `grpc_clients` only (0: none)."""

    window: Window
    processes: int = 1
    grpc_clients: int = GRPC_CLIENTS

    @property
    def rest(self) -> str:
        return "wrk" if wrk.available() and self.processes == 1 else "rest"

    def clients(self, system: System, count: int) -> list[str]:
        grpc = ["grpc"] if "grpc" in system.clients and count == self.grpc_clients else []
        return [self.rest, *grpc]


def cell(running: Running, client: str, texts: list[str], clients: int, window: Window, processes: int = 1) -> Result:
    """One cell. wrk measures CPU itself; a Python client's cell is warmed up apart and measured
    around the window: the server's roles from /proc, the client's own CPU where it reports none
    (the driver in this process; with several processes the client's CPU is not counted)."""
    if client == "wrk":
        return running.load(client, texts, clients, window)
    if window.warmup_s > 0:
        running.load(client, texts, clients, Window(0.0, window.warmup_s), processes)
    before, own = running.cpu_seconds(), time.process_time()
    result = running.load(client, texts, clients, Window(0.0, window.duration_s), processes)
    after, own = running.cpu_seconds(), time.process_time() - own
    count = max(1, result.requests)
    cpu = {role: 1000 * (after[role] - before.get(role, 0.0)) / count for role in after}
    cpu["client"] = (result.cpu_ms_per_request or {}).get("client", 1000 * own / count)
    return dataclasses.replace(result, cpu_ms_per_request=cpu)


def _row(system: System, client: str, chars: int, clients: int, run: int, result: Result) -> dict:
    row = {"system": system.name, "client": client, "chars": chars, "concurrency": clients, "round": run}
    row |= result.to_dict()
    p50 = "-" if row["p50_ms"] is None else f"{row['p50_ms']:.0f}"
    log(f"  {system.name:10} {client:5} {chars:4} chars c{clients:<3} {row['req_per_s']:8.1f} req/s p50 {p50:>5} ms")
    return row


def _failure(error: Exception, work: Path) -> str:
    """Why a system could not run: the error and the last lines of its log."""
    logs = sorted(work.glob("*.log")) + sorted(work.glob("logs/*.log"))
    tail = logs[0].read_text(errors="replace").splitlines()[-8:] if logs else []
    return "\n".join([f"{type(error).__name__}: {error}", *tail])


def measure_rounds(checkpoint: Path, work: Path, load: Load, rounds: int, names: Sequence[str], config: dict) -> dict:
    chosen = systems(config, names)
    rows, started, failed = [], {}, {}
    texts = {n: reviews(n) for n in LENGTHS}
    for run in range(rounds):
        order = chosen if run % 2 == 0 else chosen[::-1]
        log(f"round {run + 1} of {rounds}: {', '.join(s.name for s in order)}")
        for system in order:
            if system.name in failed:
                continue
            folder = work / f"{system.name}-{run}"
            try:
                with system.start(checkpoint, folder) as running:
                    _json_requests(running)
                    if "grpc" in load.clients(system, load.grpc_clients):
                        prime(running.targets["grpc"], texts[LENGTHS[0]])
                    for chars in LENGTHS:
                        for clients in CLIENTS:
                            for client in load.clients(system, clients):
                                result = cell(running, client, texts[chars], clients, load.window, load.processes)
                                rows.append(_row(system, client, chars, clients, run, result))
                    info = started.setdefault(system.name, {"title": system.title, "cold_start_s": []})
                    info["cold_start_s"].append(running.cold_start_s)
                    info["memory"] = running.memory()
            except Exception as error:  # noqa: BLE001 - a server that cannot run here must not end the run
                failed[system.name] = _failure(error, folder)
                log(f"  {system.name} failed: {failed[system.name].splitlines()[0]}")
    return {"config": config, "rows": rows, "systems": started, "failed": failed}


def measure_ceiling(work: Path, load: Load, names: Sequence[str], config: dict) -> list[dict]:
    """Each system with the tiny model, 100-character reviews, 16 clients (REST)."""
    from training.api import make_tiny_checkpoint

    checkpoint = make_tiny_checkpoint(work / "tiny-model")
    config = {**config, "handler": {**config["handler"], "explain": False}}
    rows = []
    for system in systems(config, names):
        try:
            with system.start(checkpoint, work / f"tiny-{system.name}") as running:
                _json_requests(running)
                result = cell(running, load.rest, reviews(100), CEILING_CLIENTS, load.window, load.processes)
                rows.append(_row(system, load.rest, 100, CEILING_CLIENTS, 0, result))
        except Exception as error:  # noqa: BLE001 - the others' ceilings still count
            log(f"  {system.name} (tiny model) failed: {error}")
    return rows


def summary(rows: list[dict]) -> list[dict]:
    """One line per system, client, length and clients: the rounds' mean of each figure, and the
    requests/s of each round."""
    keys = sorted({(r["system"], r["client"], r["chars"], r["concurrency"]) for r in rows}, key=_order)
    out = []
    for key in keys:
        cells = [r for r in rows if (r["system"], r["client"], r["chars"], r["concurrency"]) == key]
        line = dict(zip(("system", "client", "chars", "concurrency"), key, strict=True))
        for figure in ("req_per_s", "p50_ms", "p95_ms", "p99_ms"):
            values = [c[figure] for c in cells if c[figure] is not None]
            line[figure] = statistics.fmean(values) if values else None
        line["rounds_req_per_s"] = [c["req_per_s"] for c in cells]
        line["errors"] = sum(c["errors"] for c in cells)
        roles = sorted({role for c in cells for role in (c["cpu_ms_per_request"] or {})})
        line["cpu_ms_per_request"] = {
            role: statistics.fmean([(c["cpu_ms_per_request"] or {}).get(role, 0.0) for c in cells]) for role in roles
        }
        out.append(line)
    return out


def _order(key: tuple) -> tuple:
    system, client, chars, clients = key
    rank = ([TORCHSERVE, *PEERS].index(system) if system in (TORCHSERVE, *PEERS) else 99, client != "wrk")
    return (chars, -clients, *rank)


def _find(lines: list[dict], system: str, chars: int, clients: int, client: str = "wrk") -> dict | None:
    return next(
        (
            x
            for x in lines
            if (x["system"], x["client"], x["chars"], x["concurrency"]) == (system, client, chars, clients)
        ),
        None,
    )


def ratios(lines: list[dict]) -> list[dict]:
    """The goal at each length: TorchServe's requests/s at 16 clients against the fastest peer's
    (REST), and its lone-client p50 against the lowest peer p50."""
    out = []
    for chars in LENGTHS:
        ts16, ts1 = _find(lines, TORCHSERVE, chars, 16), _find(lines, TORCHSERVE, chars, 1)
        peer16 = [x for p in PEERS if (x := _find(lines, p, chars, 16)) and x["req_per_s"]]
        peer1 = [x for p in PEERS if (x := _find(lines, p, chars, 1)) and x["p50_ms"]]
        if ts16 and peer16:
            best = max(peer16, key=lambda x: x["req_per_s"])
            value = ts16["req_per_s"] / best["req_per_s"]
            out.append(_check("requests/s at 16 clients", chars, best["system"], value, ">=", GOAL_THROUGHPUT))
        if ts1 and ts1["p50_ms"] and peer1:
            best = min(peer1, key=lambda x: x["p50_ms"])
            value = ts1["p50_ms"] / best["p50_ms"]
            out.append(_check("p50 at a lone client", chars, best["system"], value, "<=", GOAL_LATENCY))
    return out


def _check(what: str, chars: int, peer: str, value: float, rule: str, target: float) -> dict:
    passed = value >= target if rule == ">=" else value <= target
    return {"target": f"TorchServe / fastest peer, {what}", "chars": chars, "peer": peer, "value": value}  | {
        "rule": f"{rule} {target}", "pass": passed}  # fmt: skip


def widest_gap(checks: list[dict]) -> dict | None:
    """The throughput check furthest below 1 - PROFILE_GAP, if any: where the profile looks."""
    behind = [c for c in checks if c["target"].endswith("16 clients") and c["value"] < 1 - PROFILE_GAP]
    return min(behind, key=lambda c: c["value"], default=None)


def package_of(frame: str) -> str:
    """What a py-spy frame's file belongs to: the model, tokenization, the core, or its package."""
    file = stacks.frame_file(frame)
    for part, patterns in stacks.PARTS[:3]:
        if any(stacks._matches(file, p) for p in patterns):
            return part
    path = file.split("site-packages/")[-1].split("python3.11/")[-1].lstrip("/")
    return path.split("/")[0].removesuffix(".py") or "other"


def profile(checkpoint: Path, work: Path, window: Window, names: Sequence[str], chars: int, config: dict) -> dict:
    """py-spy on every Python process of each system while wrk holds 16 clients at `chars`:
    CPU ms per request of the innermost frames' packages, by role (the Java frontend and
    Triton's C++ server are not Python: their CPU per request stands in the table)."""
    out = {}
    for system in systems(config, names):
        with system.start(checkpoint, work / f"profile-{system.name}") as running:
            _json_requests(running)
            texts = reviews(chars)
            running.load("wrk", texts, 16, Window(0.0, window.warmup_s or 1.0))
            spies = []
            for role, pids in running.processes().items():
                if role not in ("frontend", "workers"):
                    continue
                for pid in pids if isinstance(pids, list) else [pids]:
                    path = work / f"spy-{system.name}-{role}-{pid}.txt"
                    spies.append((role, path, stacks.record(pid, window.duration_s, path, SPY_RATE)))
            result = running.load("wrk", texts, 16, Window(0.0, window.duration_s))
            by_role: dict[str, Counter] = {}
            for role, path, spy in spies:
                spy.communicate(timeout=120)
                if path.exists():  # not a Python process (Java, tritonserver): py-spy gave up
                    for line in path.read_text().splitlines():
                        stack, _, count = line.rpartition(" ")
                        if stack and count.isdigit():
                            frames = stack.split(";")
                            by_role.setdefault(role, Counter())[package_of(frames[-1])] += int(count)
            requests = max(1, result.requests)
            out[system.name] = {
                "req_per_s": result.req_per_s,
                "cpu_ms_per_request": result.cpu_ms_per_request,
                "sampled_ms_per_request": {
                    role: {k: 1000 * n / SPY_RATE / requests for k, n in counts.most_common(8)}
                    for role, counts in by_role.items()
                },
            }
    return out


def measure(args, work: Path) -> dict:
    """The run of `--peers`: `args` as benchmark.py parses them (checkpoint, model config, window,
    rounds, the systems, profile, client processes, gRPC clients)."""
    if reason := peers.missing():
        raise SystemExit(f"--peers: {reason}")
    checkpoint, config, names = Path(args.checkpoint), model_config(Path(args.model_config)), args.peer_systems
    load = Load(args.window, args.processes, args.grpc_clients)
    load_start = [round(x, 2) for x in os.getloadavg()]
    figures = measure_rounds(checkpoint, work, load, args.rounds or 2, names, config)
    figures["summary"] = summary(figures["rows"])
    figures["ratios"] = ratios(figures["summary"])
    figures["ceiling"] = measure_ceiling(work, load, [n for n in names if n not in figures["failed"]], config)
    figures["settings"] = {name: SETTINGS[name] for name in names}
    figures["rounds"], figures["window"] = args.rounds or 2, dataclasses.asdict(args.window)
    gap = widest_gap(figures["ratios"])
    if args.profile and gap and stacks.available() and load.rest == "wrk":
        log(f"profiling TorchServe and {gap['peer']} at {gap['chars']} characters")
        found = profile(checkpoint, work, args.window, [TORCHSERVE, gap["peer"]], gap["chars"], config)
        figures["profile"] = {"chars": gap["chars"], **found}
    figures["load_average"] = {"start": load_start, "end": [round(x, 2) for x in os.getloadavg()]}
    return figures
