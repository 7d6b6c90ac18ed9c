"""The matrix's two plots: requests/s against review length, and latency percentiles against
clients, one line (or panel) per row system, titled with the machine line."""

from __future__ import annotations

import textwrap
from pathlib import Path

from benchmarks.report import machine_line
from benchmarks.reviews import SEED_LENGTH

TARGET_CLIENTS = 16


def _figure(title: str, env: dict, ncols: int = 1):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    width = 5.2 * ncols + 1.5
    fig, axes = plt.subplots(1, ncols, figsize=(width, 4.8), squeeze=False, sharey=True)
    fig.suptitle(f"{title}\n{textwrap.fill(machine_line(env), int(width * 15))}", fontsize=8.5)
    return fig, axes[0]


def _log_axes(ax, **labels) -> None:
    """Log axes with plain numbers (3, 30, 300 rather than 3 x 10^2), and a grid."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    ax.set(**labels)
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "log":
            axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
            axis.set_minor_formatter(NullFormatter())
    ax.grid(True, which="both", alpha=0.3)


def throughput(figures: dict, path: Path) -> bool:
    """req/s against review length at 16 clients (the most measured if fewer), one line per system."""
    rows, titles = figures["rows"], figures["titles"]
    if not rows:
        return False
    measured = sorted({r["concurrency"] for r in rows})
    clients = TARGET_CLIENTS if TARGET_CLIENTS in measured else measured[-1]
    fig, (ax,) = _figure(f"Throughput with {clients} concurrent clients", figures["environment"])
    for system, title in titles.items():
        cells = [r for r in rows if r["system"] == system and r["concurrency"] == clients and r["req_per_s"]]
        if cells:  # log scale: > 0 only
            ax.plot(*zip(*sorted((r["chars"], r["req_per_s"]) for r in cells), strict=True), marker="o", label=title)
    _log_axes(ax, xlabel="review length (characters)", ylabel="requests/s (log)", yscale="log")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def latency(figures: dict, path: Path, chars: int = SEED_LENGTH) -> bool:
    """p50 / p95 / p99 latency against clients for `chars`-long reviews, one panel per system."""
    rows = [r for r in figures["rows"] if r["chars"] == chars]
    systems = [s for s in figures["titles"] if any(r["system"] == s for r in rows)]
    if not systems:
        return False
    fig, axes = _figure(f"Latency percentiles, reviews of {chars} characters", figures["environment"], len(systems))
    for ax, system in zip(axes, systems, strict=True):
        cells = sorted((r["concurrency"], r) for r in rows if r["system"] == system and r["p50_ms"])
        clients = [c for c, _ in cells]
        for key, style in (("p50_ms", "-o"), ("p95_ms", "--s"), ("p99_ms", ":^")):
            ax.plot(clients, [r[key] for _, r in cells], style, label=key.split("_")[0])
        title = figures["titles"][system]
        _log_axes(ax, title=title, xlabel="concurrent clients", xscale="log", yscale="log")
        ax.set_xticks(clients, [str(c) for c in clients])
    axes[0].set_ylabel("latency ms (log)")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return True


def matrix_plots(figures: dict, folder: Path) -> list[str]:
    """Both plots saved into `folder`; the names of those made."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {"throughput_vs_length.png": throughput, "latency_vs_concurrency.png": latency}
    return [name for name, plot in made.items() if plot(figures, folder / name)]
