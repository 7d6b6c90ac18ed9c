"""The one report writer: every mode's figures as `<stem>.json` (all of it) and `<stem>.md` (its
tables), both stamped with the machine, date and versions they were measured on."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

from review_sentiment import paths
from review_sentiment.core.machine import cpu_name

RESULTS = paths.REPO / "results" / "benchmarks"
# Smoke runs check the harness: their figures stay out of the committed results.
LOCAL = paths.REPO / "results" / "local"


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
        **{package: _version(package) for package in ("transformers", "torchserve", "flask", "httpx")},
    }


def machine_line(env: dict) -> str:
    """One line naming the machine, date and versions: every table and plot carries it."""
    gpu = f", {env['gpu']}" if env.get("gpu") else ", no GPU"
    return (
        f"{env['cpu']}, {env['cores']} cores, {env['memory_gib']} GiB{gpu}; {env['date'][:10]}; "
        f"Python {env['python']}, torch {env['torch']}, transformers {env['transformers']}, "
        f"TorchServe {env['torchserve']}, Flask {env['flask']}"
    )


def shown(path: Path) -> str:
    """A checkpoint as a report names it: relative to the repository when inside it."""
    path = Path(path).resolve()
    return str(path.relative_to(paths.REPO)) if path.is_relative_to(paths.REPO) else str(path)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


def memory_text(info: dict) -> str:
    """Resident memory in MiB of each measured process: a float per lone process, a list per role
    with several (TorchServe's workers)."""
    names = {"frontend": "Java frontend", "workers": "workers", "process": "process"}
    parts = []
    for key, value in (info.get("memory") or {}).items():
        role = key.removesuffix("_mib")
        values = value if isinstance(value, list) else [value]
        if values:
            parts.append(f"{names.get(role, role)} " + ", ".join(f"{v:.0f}" for v in values))
    return "; ".join(parts) or "-"


def write(folder: Path, stem: str, title: str, report: dict, body: str, plots: Sequence[str] = ()) -> str:
    """`stem`.json and `stem`.md (title, machine line, `body`, the plots already saved in
    `folder`); returns the Markdown body with its machine line, for the console."""
    env = report["environment"]
    text = f"Machine: {machine_line(env)}. Load average at start: {env['load_average_at_start']}.\n\n{body}"
    images = "".join(f"\n![{plot}]({plot})\n" for plot in plots)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.json").write_text(json.dumps({**report, "plots": list(plots)}, indent=2, default=str) + "\n")
    (folder / f"{stem}.md").write_text(f"# {title}\n\n{text}{images}")
    return text
