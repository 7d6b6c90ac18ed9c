"""What the image tests share (tests/test_images.py runs the compose stack, tests/test_kube.py the
Kubernetes manifests): podman as this project's CI machines run it, the two images built once a
session by `podman-compose build` on the stand-in base from the wheelhouse only, and the figures
file tests/output/images.json. The fixtures are registered in conftest.py."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from review_sentiment.endpoints import Endpoints
from review_sentiment.paths import REPO

PODMAN = REPO / "deploy" / "podman" / "podman.sh"
BASE = "localhost/python-standin:3.11-bookworm"
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.cpu.yml", "tests/compose.podman.yml")
# The images the compose file names, by service (podman stores them under localhost/).
IMAGES = {"torchserve": "localhost/review-sentiment/torchserve:cpu", "ui": "localhost/review-sentiment/ui:latest"}
PROJECT_LABEL = "io.podman.compose.project"
USER, PASSWORD = "operator", f"throwaway-{uuid.uuid4().hex}"
FIGURES = Path(__file__).parent / "output" / "images.json"


def podman(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run([str(PODMAN), *args], capture_output=True, text=True, timeout=timeout, check=check)


def tail(result: subprocess.CompletedProcess) -> str:
    return result.stdout[-3000:] + result.stderr[-3000:]


@dataclass(frozen=True)
class Project:
    """One compose project: podman-compose on the three files, with the test's ports and users."""

    name: str
    environment: dict[str, str]

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
        files = [option for path in COMPOSE_FILES for option in ("-f", path)]
        command = [sys.executable, "-m", "podman_compose", "--podman-path", str(PODMAN), *files, "-p", self.name]
        # chroot isolation for the build's RUN steps: runc's own needs what these machines lack.
        env = {**os.environ, **self.environment, "BUILDAH_ISOLATION": "chroot"}
        result = subprocess.run([*command, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)
        assert result.returncode == 0 or not check, f"podman-compose {' '.join(args)} failed:\n{tail(result)}"
        return result

    def container(self, service: str) -> str:
        found = podman("ps", "-a", "--filter", f"label={PROJECT_LABEL}={self.name}",
                       "--filter", f"label=io.podman.compose.service={service}", "--format", "{{.Names}}")  # fmt: skip
        return found.stdout.split()[0]

    def healthy(self, service: str) -> bool:
        """The compose file's healthcheck, run now: podman's own timer needs systemd."""
        return podman("healthcheck", "run", self.container(service), check=False, timeout=60).returncode == 0

    def logs(self, service: str) -> str:
        """For failure messages: the service's container output, or what podman-compose made of it."""
        try:
            return tail(podman("logs", self.container(service), check=False))
        except IndexError:
            return f"no container for {service}:\n{tail(self.compose('ps', check=False))}"

    def leftovers(self) -> dict[str, list[str]]:
        label = f"label={PROJECT_LABEL}={self.name}"
        return {
            "containers": podman("ps", "-a", "--filter", label, "--format", "{{.Names}}").stdout.split(),
            "volumes": podman("volume", "ls", "--filter", label, "--format", "{{.Name}}").stdout.split(),
            "pods": podman("pod", "ps", "--filter", f"name={self.name}", "--format", "{{.Name}}").stdout.split(),
        }


def new_project(users_folder: Path) -> Project:
    """A unique project name, free loopback ports and a throwaway users file (the `ui_users` secret)."""
    if not PODMAN.exists() or subprocess.run(["which", "podman"], capture_output=True).returncode:
        pytest.fail("podman is missing: `make test-images` installs it (Debian packages podman, runc, mmdebstrap)")
    if importlib.util.find_spec("podman_compose") is None:
        pytest.fail("podman-compose is missing from the venv: `make install` installs it (requirements.txt)")
    users = users_folder / "ui_users"
    users.write_text(f"{USER}:{PASSWORD}\n")
    users.chmod(0o644)  # read by uid 10001 through the secret's bind mount; the folder stays private
    ports = {f"TEST_{name.upper()}_PORT": str(port) for name, port in Endpoints.free().ports().items()}
    ports["TEST_UI_PORT"] = str(Endpoints.free().inference_port)
    return Project(f"rs-test-{uuid.uuid4().hex[:8]}", {**ports, "SENTIMENT_UI_USERS_FILE": str(users)})


def image_size_mb(image: str) -> float:
    return round(int(podman("image", "inspect", "--format", "{{.Size}}", image).stdout) / 2**20, 1)


def container_rss_mb(name: str) -> float:
    """Resident memory of the container's processes (its PID 1 and all below it)."""
    pid = int(podman("inspect", "--format", "{{.State.Pid}}", name).stdout)
    root = psutil.Process(pid)
    return round(sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20, 1)


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=5).ok
    except requests.RequestException:
        return False


@pytest.fixture(scope="session")
def image_figures() -> Iterator[dict]:
    found: dict = {}
    yield found
    FIGURES.parent.mkdir(parents=True, exist_ok=True)
    FIGURES.write_text(json.dumps(found, indent=2))


@pytest.fixture(scope="session")
def images(tmp_path_factory, image_figures: dict) -> dict[str, str]:
    """Both images built by `podman-compose build` on the stand-in base, from the wheelhouse only."""
    if podman("image", "exists", BASE, check=False).returncode:
        pytest.fail(f"no base image {BASE}: `make test-images` makes it (deploy/podman/standin-base.sh)")
    if not list((REPO / "wheelhouse").glob("torch-*.whl")):
        pytest.fail("the wheelhouse is empty: `make wheelhouse` fills it")
    builder = new_project(tmp_path_factory.mktemp("build-secrets"))
    image_figures["build_s"] = {}
    for service, image in IMAGES.items():  # one at a time: each build's time is its own
        start = time.monotonic()
        builder.compose("build", service, timeout=3600)
        image_figures["build_s"][service] = round(time.monotonic() - start, 1)
        image_figures.setdefault("size_mb", {})[service] = image_size_mb(image)
    return IMAGES
