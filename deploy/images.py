"""What the Dockerfile installs, read from the Dockerfile itself (the one place the image package
lists live), and the wheelhouse for an air-gapped build:

    python -m deploy.images wheelhouse [pip download options]   # what `make wheelhouse` runs

On a connected machine add `--extra-index-url https://download.pytorch.org/whl/cpu` for the CPU
torch wheel (PyPI's Linux torch is the CUDA build); this project's machines have it on disk.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DOCKERFILE = REPO / "Dockerfile"
WHEELHOUSE = REPO / "wheelhouse"
DEPS_STAGES = ("serve-deps", "ui-deps")


def dockerfile_stages(dockerfile: Path = DOCKERFILE) -> dict[str, list[str]]:
    """Instructions of each stage, by stage name; continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", dockerfile.read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.match(r"FROM\s+(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if match:
            current = stages.setdefault(match.group(2) or match.group(1), [])
        current.append(line)
    return stages


def pip_installed(stage: list[str]) -> set[str]:
    """Package names of the `pip install` commands of one stage (options and their values skipped)."""
    names = set()
    for step in stage:
        for command in re.findall(r"pip install (.*?)(?:&&|$)", step):
            skip = False
            for word in command.split():
                if skip or word.startswith("-"):
                    skip = word in ("--index-url", "-c", "--constraint", "--extra-index-url")
                    continue
                names.add(word)
    return names


def image_packages() -> list[str]:
    stages = dockerfile_stages()
    return sorted(set().union(*(pip_installed(stages[name]) for name in DEPS_STAGES)))


def wheelhouse(pip_args: list[str]) -> int:
    """Download every wheel the images install (and their requirements) at requirements.txt's versions."""
    command = [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", str(WHEELHOUSE)]
    command += ["-c", str(REPO / "requirements.txt"), *pip_args, *image_packages()]
    return subprocess.run(command).returncode


if __name__ == "__main__":
    if sys.argv[1:2] != ["wheelhouse"]:
        sys.exit(__doc__)
    sys.exit(wheelhouse(sys.argv[2:]))
