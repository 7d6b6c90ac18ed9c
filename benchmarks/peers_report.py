"""`--peers`' tables and plot: the rounds' means per system and cell, the goal's ratios, CPU per
request by process role, each system's settings, the tiny-model ceiling and the profile."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import fmt, machine_line
from review_sentiment.markdown import markdown_table

CLIENT_TITLES = {"wrk": "REST (wrk)", "rest": "REST (Python client)", "grpc": "gRPC (Python client)"}
VERDICTS = {True: "PASS", False: "FAIL"}


def _title(figures: dict, line: dict) -> str:
    info = figures["systems"].get(line["system"]) or {"title": line["system"]}
    return f"{info['title']} {CLIENT_TITLES[line['client']]}"


def _cpu(line: dict) -> str:
    cpu = line.get("cpu_ms_per_request") or {}
    return ", ".join(f"{role} {ms:.2f}" for role, ms in cpu.items()) or "-"


def markdown(figures: dict) -> str:
    window, lines = figures["window"], figures["summary"]
    rounds = " / ".join
    text = [
        f"{figures['rounds']} rounds, each system started fresh in each round, the order reversed every other "
        f"round; each cell {window['warmup_s']} s warm-up then {window['duration_s']} s measured, closed loop. "
        'Every system: the same checkpoint and handler settings, request {"text": review} as JSON, auth off. '
        f"Load average: {figures['load_average']['start']} at the start, {figures['load_average']['end']} at the end.",
        "",
        markdown_table(
            ("system", "chars", "clients", "req/s (mean)", "req/s per round", "p50 ms", "p95 ms", "p99 ms", "errors"),
            (
                (_title(figures, x), x["chars"], x["concurrency"], fmt(x["req_per_s"]))
                + (rounds(fmt(v) for v in x["rounds_req_per_s"]), fmt(x["p50_ms"], 0), fmt(x["p95_ms"], 0))
                + (fmt(x["p99_ms"], 0), x["errors"])
                for x in lines
            ),
        ),
        "",
        "CPU ms per request by process role (user + system, all threads; the rounds' mean):",
        "",
        markdown_table(
            ("system", "chars", "clients", "CPU ms per request"),
            ((_title(figures, x), x["chars"], x["concurrency"], _cpu(x)) for x in lines),
        ),
        "",
        markdown_table(
            ("goal", "chars", "against", "value", "rule", "result"),
            (
                (c["target"], c["chars"], c["peer"], fmt(c["value"], 2), c["rule"], VERDICTS[c["pass"]])
                for c in figures["ratios"]
            ),
        ),
        "",
        markdown_table(
            ("system", "batching and layout", "cold start s (per round)", "memory RSS MiB"), _settings(figures)
        ),
    ]
    if figures["failed"]:
        text += ["", "Did not run here:", ""]
        text += [f"- **{name}**:\n\n```\n{why}\n```" for name, why in figures["failed"].items()]
    if figures.get("ceiling"):
        text += ["", "The stack's ceiling: the tiny model (2 layers, dim 32), 100 characters, 16 clients (wrk):", ""]
        text.append(
            markdown_table(
                ("system", "req/s", "p50 ms", "CPU ms per request"),
                (
                    (_title(figures, x), fmt(x["req_per_s"], 0), fmt(x["p50_ms"], 1), _cpu(x))
                    for x in figures["ceiling"]
                ),
            )
        )
    if figures.get("profile"):
        text += ["", profile_markdown(figures)]
    return "\n".join(text) + "\n"


def _settings(figures: dict):
    for name, setting in figures["settings"].items():
        info = figures["systems"].get(name, {})
        starts = " / ".join(fmt(s) for s in info.get("cold_start_s", []))
        memory = "; ".join(
            f"{role.removesuffix('_mib')} " + ", ".join(f"{v:.0f}" for v in (mib if isinstance(mib, list) else [mib]))
            for role, mib in (info.get("memory") or {}).items()
        )
        yield info.get("title", name), setting, starts or "-", memory or "-"


def profile_markdown(figures: dict) -> str:
    found = figures["profile"]
    out = [f"py-spy, 16 clients at {found['chars']} characters: CPU ms per request of the innermost frames' packages"]
    for name, cell in found.items():
        if name == "chars":
            continue
        out += ["", f"**{name}** ({fmt(cell['req_per_s'])} req/s; CPU ms per request by role: {_cpu(cell)}):", ""]
        rows = [
            (role, part, fmt(ms, 2))
            for role, parts in cell["sampled_ms_per_request"].items()
            for part, ms in parts.items()
        ]
        out.append(markdown_table(("role", "package of the innermost frame", "sampled ms per request"), rows))
    return "\n".join(out)


def _cell(lines: list[dict], system: str, chars: int, clients: int) -> dict | None:
    return next((x for x in lines if (x["system"], x["chars"], x["concurrency"]) == (system, chars, clients)), None)


def plot(figures: dict, folder: Path) -> list[str]:
    """Three panels: requests/s at 16 clients, p50 at a lone client (REST, both lengths; a dot
    per round), and the tiny-model ceiling."""
    lines = [x for x in figures["summary"] if x["client"] in ("wrk", "rest")]
    if not lines:
        return []
    names = list(dict.fromkeys(x["system"] for x in lines))
    titles = [figures["systems"].get(n, {}).get("title", n) for n in names]
    lengths = sorted({x["chars"] for x in lines})
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 5.2))
    title = "TorchServe against its peers (REST, the rounds' mean; dots: each round)"
    fig.suptitle(f"{title}\n{textwrap.fill(machine_line(figures['environment']), 200)}", fontsize=8.5)
    width = 0.8 / len(lengths)
    for k, chars in enumerate(lengths):
        for ax, clients, key in ((axes[0], 16, "req_per_s"), (axes[1], 1, "p50_ms")):
            cells = [
                next((x for x in lines if (x["system"], x["chars"], x["concurrency"]) == (n, chars, clients)), None)
                for n in names
            ]
            xs = [i + (k - (len(lengths) - 1) / 2) * width for i in range(len(names))]
            ax.bar(xs, [(c or {}).get(key) or 0 for c in cells], width, label=f"{chars} chars")
            if key == "req_per_s":
                for x, c in zip(xs, cells, strict=True):
                    ax.plot(
                        [x] * len((c or {}).get("rounds_req_per_s", [])), (c or {}).get("rounds_req_per_s", []), "k."
                    )
    ceiling = {x["system"]: x["req_per_s"] for x in figures.get("ceiling", [])}
    axes[2].bar(range(len(names)), [ceiling.get(n, 0) for n in names], 0.6, color="gray")
    for ax, label in zip(
        axes, ("requests/s, 16 clients", "p50 ms, 1 client", "requests/s, tiny model, 16 clients"), strict=True
    ):
        ax.set_xticks(range(len(names)), titles, rotation=30, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelleft=True)
        ax.grid(True, axis="y", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    name = "peers.png"
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / name, dpi=120)
    return [name]
