"""What a benchmark run writes: the machine and versions, Markdown tables, JSON, PNG plots,
and the issue's three target ratios."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
import textwrap
from importlib import metadata
from pathlib import Path

from benchmarks.reviews import SEED_LENGTH
from review_sentiment.core.machine import cpu_name
from review_sentiment.markdown import markdown_table

SYSTEM_NAMES = {
    "flask-seed": "Flask + pipeline, as the seed ran it (fp32, 512 tokens)",
    "flask": "Flask + pipeline (seed design, server's precision and max_length)",
    "torchserve-wrk": "TorchServe REST (wrk)",
    "torchserve-rest": "TorchServe REST (Python client)",
    "torchserve-grpc": "TorchServe gRPC",
    "in-process": "in-process core (ceiling)",
}
# The processes behind the rows, for cold start and memory.
PROCESS_NAMES = {
    "in-process": SYSTEM_NAMES["in-process"],
    "flask": SYSTEM_NAMES["flask"],
    "flask-seed": SYSTEM_NAMES["flask-seed"],
    "torchserve": "TorchServe",
}
TARGET_CLIENTS = 16
SHORT_LENGTH = 100
# TorchServe's REST rows, best first: the native client's, else the Python client's.
REST_SYSTEMS = ("torchserve-wrk", "torchserve-rest")


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def environment(device: str = "cpu") -> dict:
    import torch

    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "date": dt.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "memory_gib": round(memory_gib, 1),
        "gpu": torch.cuda.get_device_name(0) if device.startswith("cuda") else None,
        "load_average_at_start": round(os.getloadavg()[0], 2),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "transformers": _version("transformers"),
        "torchserve": _version("torchserve"),
        "flask": _version("flask"),
        "httpx": _version("httpx"),
    }


def machine_line(env: dict) -> str:
    """One line naming the machine, date and versions: every table and plot carries it."""
    gpu = f", {env['gpu']}" if env.get("gpu") else ", no GPU"
    return (
        f"{env['cpu']}, {env['cores']} cores, {env['memory_gib']} GiB{gpu}; {env['date'][:10]}; "
        f"Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, "
        f"TorchServe {env['torchserve']}, Flask {env['flask']}"
    )


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def find(rows: list[dict], system: str, chars: int, clients: int) -> dict | None:
    return next((r for r in rows if (r["system"], r["chars"], r["concurrency"]) == (system, chars, clients)), None)


def rest_row(rows: list[dict], chars: int, clients: int) -> dict | None:
    """TorchServe's REST cell, measured with wrk where it ran, else with the Python client."""
    return next((r for system in REST_SYSTEMS if (r := find(rows, system, chars, clients))), None)


def serving_overhead_ms(server: dict | None, ceiling: dict | None) -> float | None:
    """CPU per request that TorchServe spends beyond the in-process core's own CPU per review
    (frontend + workers - core), from a wrk cell and the in-process cell of the same load."""
    cpu, core = (server or {}).get("cpu_ms_per_request"), (ceiling or {}).get("cpu_ms_per_request")
    if not cpu or not core or "workers" not in cpu:
        return None
    return cpu["frontend"] + cpu["workers"] - core["process"]


def ratios(rows: list[dict], clients: int = TARGET_CLIENTS) -> list[dict]:
    """The targets, from one run: TorchServe (REST) against the in-process ceiling and the seed's
    Flask design (at the server's precision and max_length) at `clients`, its lone-client p50
    against batch-1 latency, and the CPU it spends per request beyond the model."""

    def ratio(a: dict | None, b: dict | None, key: str) -> float | None:
        return a[key] / b[key] if a and b and a[key] and b[key] else None  # None: a cell without answers

    checks = []
    for chars, floor in ((SEED_LENGTH, 0.9), (SHORT_LENGTH, 0.8)):
        ts, ts_one = rest_row(rows, chars, clients), rest_row(rows, chars, 1)
        ceiling, core_one = find(rows, "in-process", chars, clients), find(rows, "in-process", chars, 1)
        checks += [
            (f"TorchServe / in-process req/s, {clients} clients", chars, ratio(ts, ceiling, "req_per_s"), ">=", floor),
            ("TorchServe p50, 1 client / in-process batch-1 p50", chars, ratio(ts_one, core_one, "p50_ms"), "<=", 1.3),
            (
                f"serving overhead, CPU ms per request beyond the core, {clients} clients",
                chars,
                serving_overhead_ms(find(rows, "torchserve-wrk", chars, clients), ceiling),
                "<=",
                1.5,
            ),
        ]
    flask_ratio = ratio(rest_row(rows, SEED_LENGTH, clients), find(rows, "flask", SEED_LENGTH, clients), "req_per_s")
    checks.append(
        (
            f"TorchServe / Flask (same precision, max_length) req/s, {clients} clients",
            SEED_LENGTH,
            flask_ratio,
            ">=",
            10.0,
        )
    )
    out = []
    for name, chars, value, op, target in checks:
        passed = None if value is None else (value >= target if op == ">=" else value <= target)
        out.append({"target": name, "chars": chars, "value": value, "rule": f"{op} {target}", "pass": passed})
    return out


def cpu_markdown(rows: list[dict]) -> str:
    """CPU per request by process, for the cells where it was measured."""
    measured = [r for r in rows if r.get("cpu_ms_per_request")]
    if not measured:
        return ""
    names = ("process", "frontend", "workers", "client")
    return markdown_table(
        ("system", "review chars", "clients", *(f"{n} CPU ms/request" for n in names)),
        (
            (SYSTEM_NAMES[r["system"]], r["chars"], r["concurrency"])
            + tuple(fmt(r["cpu_ms_per_request"].get(n), 2) for n in names)
            for r in measured
        ),
    )


def matrix_markdown(report: dict) -> str:
    env, rows, config, window = report["environment"], report["rows"], report["server_config"], report["window"]
    cap = f" or {window['max_requests']} requests" if window.get("max_requests") else ""
    lines = [
        f"Machine: {machine_line(env)}. Load average at start: {env['load_average_at_start']}.",
        f"Server config: {config['summary']}. Each cell: {window['warmup_s']} s warm-up, then at most "
        f"{window['duration_s']} s measured{cap} (Flask at most {report['flask_max_requests']} requests). "
        "Closed loop: each client sends its next review when the last is answered.",
        "",
        markdown_table(
            ("system", "review chars", "clients", "req/s", "p50 ms", "p95 ms", "p99 ms", "errors", "requests"),
            (
                (SYSTEM_NAMES[r["system"]], r["chars"], r["concurrency"], fmt(r["req_per_s"]))
                + (fmt(r["p50_ms"], 0), fmt(r["p95_ms"], 0), fmt(r["p99_ms"], 0), r["errors"], r["requests"])
                for r in rows
            ),
        ),
    ]
    if report.get("ratios"):
        verdicts = {None: "n/a", True: "PASS", False: "FAIL"}
        ratio_rows = [
            (t["target"], t["chars"], fmt(t["value"], 2), t["rule"], verdicts[t["pass"]]) for t in report["ratios"]
        ]
        lines += ["", markdown_table(("target", "review chars", "value", "rule", "result"), ratio_rows)]
    cpu = cpu_markdown(report["rows"])
    if cpu:
        lines += ["", "CPU per request (user + system, all threads; in-process: per review):", "", cpu]
    if report.get("systems"):
        headers = ("system", "cold start s (start command to first answer)", "memory RSS MiB")
        process_rows = [
            (PROCESS_NAMES[name], fmt(info.get("cold_start_s")), memory_text(info))
            for name, info in report["systems"].items()
        ]
        lines += ["", markdown_table(headers, process_rows)]
    return "\n".join(lines) + "\n"


def memory_text(info: dict) -> str:
    memory = info.get("memory") or {}
    parts = []
    if "frontend_mib" in memory:
        parts.append(f"Java frontend {memory['frontend_mib']:.0f}")
    if memory.get("workers_mib"):
        parts.append("workers " + ", ".join(f"{m:.0f}" for m in memory["workers_mib"]))
    if "process_mib" in memory:
        parts.append(f"process {memory['process_mib']:.0f}")
    return "; ".join(parts) or "-"


def _figure(title: str, env: dict, ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 5.2 * ncols + 1.5
    fig, axes = plt.subplots(1, ncols, figsize=(width, 4.8), squeeze=False, sharey=True)
    fig.suptitle(f"{title}\n{textwrap.fill(machine_line(env), int(width * 15))}", fontsize=8.5)
    return fig, axes[0]


def _plain_log_axes(ax) -> None:
    """Plain numbers on log axes (3, 30, 300 rather than 3 x 10^2); call after setting the scales."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())


def plot_throughput(report: dict, path: Path, clients: int = TARGET_CLIENTS) -> bool:
    """req/s against review length, one line per system, at `clients` (the largest measured if absent)."""
    rows = report["rows"]
    measured = sorted({r["concurrency"] for r in rows})
    if not rows:
        return False
    clients = clients if clients in measured else measured[-1]
    fig, (ax,) = _figure(f"Throughput with {clients} concurrent clients", report["environment"])
    for system in SYSTEM_NAMES:
        points = sorted(
            (r["chars"], r["req_per_s"])
            for r in rows
            if r["system"] == system and r["concurrency"] == clients and r["req_per_s"]  # log scale: > 0 only
        )
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=SYSTEM_NAMES[system])
    ax.set(xlabel="review length (characters)", ylabel="requests/s (log)", yscale="log")
    _plain_log_axes(ax)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def plot_latency(report: dict, path: Path, chars: int = SEED_LENGTH) -> bool:
    """p50 / p95 / p99 latency against clients for `chars`-long reviews, one panel per system."""
    rows = [r for r in report["rows"] if r["chars"] == chars]
    systems = [s for s in SYSTEM_NAMES if any(r["system"] == s for r in rows)]
    if not systems:
        return False
    fig, axes = _figure(f"Latency percentiles, reviews of {chars} characters", report["environment"], len(systems))
    for ax, system in zip(axes, systems, strict=True):
        points = sorted((r["concurrency"], r) for r in rows if r["system"] == system and r["p50_ms"])
        clients = [c for c, _ in points]
        for key, style in (("p50_ms", "-o"), ("p95_ms", "--s"), ("p99_ms", ":^")):
            ax.plot(clients, [r[key] for _, r in points], style, label=key.split("_")[0])
        ax.set(title=SYSTEM_NAMES[system], xlabel="concurrent clients", xscale="log", yscale="log")
        _plain_log_axes(ax)
        ax.set_xticks(clients, [str(c) for c in clients])
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("latency ms (log)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def save_report(folder: Path, stem: str, report: dict, text: str) -> None:
    """A benchmark mode's outputs: `stem`.json (the whole report) and `stem`.md (its tables)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str) + "\n")
    (folder / f"{stem}.md").write_text(text)


def write_matrix(report: dict, folder: Path) -> str:
    """results.md, results.json, throughput_vs_length.png, latency_vs_concurrency.png; returns the table."""
    folder.mkdir(parents=True, exist_ok=True)
    text = matrix_markdown(report)
    plots = []
    if plot_throughput(report, folder / "throughput_vs_length.png"):
        plots.append("throughput_vs_length.png")
    if plot_latency(report, folder / "latency_vs_concurrency.png"):
        plots.append("latency_vs_concurrency.png")
    report = {**report, "plots": plots}
    (folder / "results.json").write_text(json.dumps(report, indent=2) + "\n")
    images = "".join(f"\n![{p}]({p})\n" for p in plots)
    (folder / "results.md").write_text(f"# Benchmark: {report['mode']}\n\n{text}{images}")
    return text
